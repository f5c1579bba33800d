// The Node socket.io 4 peer server: same handlers as bench/apps/*_app.py.
// echo acks its argument; broadcast sends "bcast" to every client; cpu runs
// 50 ms of CPU work (a bounded loop calibrated once at start, like the
// Python servers) on the event loop, as a Node handler would.
// Usage: node server.js PORT
"use strict";
const http = require("http");
const { Server } = require("socket.io");

function burn(n) {
  let total = 0;
  for (let i = 0; i < n; i++) total += (i * i) % 7;
  return total;
}

function calibrate(targetMs = 50, probe = 500_000, tries = 15) {
  let best = Infinity;
  for (let t = 0; t < tries; t++) {
    const t0 = process.hrtime.bigint();
    burn(probe);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return Math.max(1, Math.floor((probe * targetMs) / best));
}

if (process.argv[2] === "--calibrate") { console.log(calibrate()); process.exit(0); }
// bench/run.py calibrates once (on the server's core) and passes the count,
// so every run of a benchmark does the same work
const CPU_ITERS = Number(process.env.BENCH_CPU_ITERS_JS) || calibrate();
const port = Number(process.argv[2]);
// probed during the capacity run, as the Python servers' health endpoints are
const httpServer = http.createServer((req, res) => {
  if (req.url === "/health") res.end("ok");
});
const io = new Server(httpServer, { serveClient: false });

io.on("connection", (socket) => {
  socket.on("echo", (data, ack) => { if (typeof ack === "function") ack(data); });
  socket.on("broadcast", (data) => { io.emit("bcast", data); });
  socket.on("cpu", (data, ack) => { burn(CPU_ITERS); if (typeof ack === "function") ack(data); });
});

httpServer.listen(port, "127.0.0.1", () => {
  process.stderr.write(`node ${process.version} socket.io on ${port}, cpu iters ${CPU_ITERS}\n`);
});
process.on("SIGTERM", () => { io.close(); process.exit(0); });
