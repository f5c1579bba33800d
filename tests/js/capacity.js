// Holds N WebSocket clients open against one server, with the official client.
//
//   node capacity.js URL N [TIMEOUT_MS] [TRANSPORTS]
//
// Connects N clients (TRANSPORTS, comma-separated, default "websocket"), has
// each answer one acked echo, then prints {"connected": n, "acked": n,
// "errors": [...]} on one line and keeps them all open until stdin closes (or
// TIMEOUT_MS passes), when it prints {"still_connected": n} and exits.  If the
// server closes every one of them first, it prints {"disconnected": n,
// "reasons": {reason: count}} as soon as the last one goes.
"use strict";

const { io } = require("socket.io-client");

const [url, countArg, timeoutArg, transportArg] = process.argv.slice(2);
const count = Number(countArg);
const timeout = Number(timeoutArg || 120000);
const transports = (transportArg || "websocket").split(",");
const reasons = {};
let disconnected = 0;
let reported = false;
if (!url || !count) {
  process.stderr.write("usage: node capacity.js URL N [TIMEOUT_MS]\n");
  process.exit(2);
}

const sockets = [];
const errors = [];
let acked = 0;

function one(i) {
  return new Promise((resolve) => {
    const socket = io(url, { transports, forceNew: true, reconnection: false,
                             timeout: 60000 });
    sockets.push(socket);
    socket.on("disconnect", (reason) => {
      reasons[reason] = (reasons[reason] || 0) + 1;
      disconnected += 1;
      if (reported && disconnected === sockets.length) {
        process.stdout.write(JSON.stringify({ disconnected, reasons }) + "\n");
      }
    });
    socket.once("connect_error", (err) => { errors.push(`${i}: ${err.message}`); resolve(); });
    socket.once("connect", () => {
      socket.timeout(60000).emit("echo", i, (err, value) => {
        if (err) errors.push(`${i}: ack ${err.message}`);
        else if (value === i) acked += 1;
        else errors.push(`${i}: echo gave ${value}`);
        resolve();
      });
    });
  });
}

async function main() {
  // connect in waves so the handshakes do not all land in one instant
  const wave = 50;
  for (let start = 0; start < count; start += wave) {
    const batch = [];
    for (let i = start; i < Math.min(count, start + wave); i++) batch.push(one(i));
    await Promise.all(batch);
  }
  const connected = sockets.filter((s) => s.connected).length;
  process.stdout.write(JSON.stringify({ connected, acked, errors: errors.slice(0, 10) }) + "\n");
  reported = true;
  const finish = () => {
    const still = sockets.filter((s) => s.connected).length;
    process.stdout.write(JSON.stringify({ still_connected: still }) + "\n");
    sockets.forEach((s) => s.close());
    process.exit(0);
  };
  process.stdin.on("end", finish);
  process.stdin.resume();
  setTimeout(finish, timeout);
}

main();
