// The load generator of bench/run.py: many socket.io-client WebSocket clients
// in one Node process, one workload per run, result as one JSON line on stdout.
// Usage: node load.js '<json config>'   (see bench/workloads.py for the keys)
// Everything is bounded: client counts by the config, time by the deadline.
"use strict";
const fs = require("fs");
const { io } = require("socket.io-client");

const cfg = JSON.parse(process.argv[2]);
const CLK_TCK = cfg.clk_tck || 100;
const hardDeadline = Date.now() + (cfg.max_seconds || 120) * 1000;
setTimeout(() => { emitResult({ error: "load generator hit its time bound" }); process.exit(3); },
           (cfg.max_seconds || 120) * 1000).unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

function procStat(pid) {
  // utime + stime (clock ticks), fields 14 and 15 of /proc/PID/stat
  const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}
function procStatus(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number((/VmRSS:\s+(\d+)/.exec(s) || [0, 0])[1]);
  const threads = Number((/Threads:\s+(\d+)/.exec(s) || [0, 0])[1]);
  return { kb, threads };
}
function serverSnap() {
  let ticks = 0, kb = 0, threads = 0;
  for (const pid of cfg.pids || []) {
    try {
      ticks += procStat(pid);
      const st = procStatus(pid);
      kb += st.kb; threads = Math.max(threads, st.threads);
    } catch (e) { /* a process of the tree went away */ }
  }
  return { ticks, kb, threads, t: now(), self: process.cpuUsage() };
}
function cpuPercents(a, b) {
  const wall = (b.t - a.t) / 1000;
  const self = (b.self.user - a.self.user + b.self.system - a.self.system) / 1e6;
  return { server_cpu_pct: (100 * (b.ticks - a.ticks)) / CLK_TCK / wall,
           loadgen_cpu_pct: (100 * self) / wall, seconds: wall };
}
function pct(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
function alive(pid) {
  // a dead child stays in /proc as a zombie until run.py reaps it
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return s.slice(s.lastIndexOf(")") + 2, s.lastIndexOf(")") + 3) !== "Z";
  } catch (e) { return false; }
}
function emitResult(obj) { process.stdout.write(JSON.stringify(obj) + "\n"); }

function connectOne(timeoutMs) {
  return new Promise((resolve) => {
    const s = io(cfg.url, { transports: ["websocket"], forceNew: true, reconnection: false,
                            timeout: timeoutMs });
    const timer = setTimeout(() => { s.close(); resolve(null); }, timeoutMs + 500);
    s.once("connect", () => { clearTimeout(timer); resolve(s); });
    s.once("connect_error", () => { clearTimeout(timer); s.close(); resolve(null); });
  });
}

// Opens up to n clients, `batch` handshakes at a time; stops at the first
// batch with a failure (the server's limit) or at the time bound.
async function connectMany(n, batch, timeoutMs, boundMs) {
  const socks = [];
  let failed = 0;
  const until = Math.min(hardDeadline - 15000, Date.now() + boundMs);
  while (socks.length < n && Date.now() < until) {
    const k = Math.min(batch, n - socks.length);
    const got = await Promise.all(Array.from({ length: k }, () => connectOne(timeoutMs)));
    for (const s of got) { if (s) socks.push(s); else failed++; }
    if (failed) break;
  }
  return { socks, failed };
}

async function measure(warmupMs, durationMs, counters) {
  await sleep(warmupMs);
  const before = { ...counters.get() };
  counters.recording = true;
  const a = serverSnap();
  await sleep(durationMs);
  const b = serverSnap();
  counters.recording = false;
  const after = counters.get();
  return { delta: (k) => after[k] - before[k], cpu: cpuPercents(a, b) };
}

async function echo() {
  const { socks, failed } = await connectMany(cfg.clients, 50, 10000, 60000);
  if (socks.length < cfg.clients) return finish(socks, { error: `connected ${socks.length}/${cfg.clients}`, failed });
  let acks = 0, running = true;
  const lat = [];
  const counters = { recording: false, get: () => ({ acks }) };
  const payload = "x".repeat(32);
  for (const s of socks) {
    const loop = () => {
      if (!running) return;
      const t0 = now();
      s.emit("echo", { p: payload }, () => {
        acks++;
        if (counters.recording) lat.push(now() - t0);
        loop();
      });
    };
    loop();
  }
  const m = await measure(cfg.warmup_ms, cfg.duration_ms, counters);
  running = false;
  lat.sort((x, y) => x - y);
  return finish(socks, { value: m.delta("acks") / m.cpu.seconds, unit: "round-trips/s",
                         p50_ms: pct(lat, 50), p99_ms: pct(lat, 99), ...m.cpu });
}

async function broadcast() {
  const { socks, failed } = await connectMany(cfg.clients, 50, 10000, 60000);
  if (socks.length < cfg.clients) return finish(socks, { error: `connected ${socks.length}/${cfg.clients}`, failed });
  const n = socks.length, window = cfg.window || 8;
  let deliveries = 0, seq = 0, completed = 0, running = true;
  const seen = new Map();
  const counters = { recording: false, get: () => ({ deliveries }) };
  const pump = () => {
    while (running && seq - completed < window) { seq++; socks[0].emit("broadcast", { seq }); }
  };
  for (const s of socks) {
    s.on("bcast", (d) => {
      deliveries++;
      const c = (seen.get(d.seq) || 0) + 1;
      if (c === n) { seen.delete(d.seq); completed = Math.max(completed, d.seq); pump(); }
      else seen.set(d.seq, c);
    });
  }
  pump();
  const m = await measure(cfg.warmup_ms, cfg.duration_ms, counters);
  running = false;
  return finish(socks, { value: m.delta("deliveries") / m.cpu.seconds, unit: "deliveries/s", ...m.cpu });
}

async function fairness() {
  const total = cfg.cpu_clients + cfg.light_clients;
  const { socks, failed } = await connectMany(total, 50, 10000, 60000);
  if (socks.length < total) return finish(socks, { error: `connected ${socks.length}/${total}`, failed });
  let cpuDone = 0, lightDone = 0, running = true;
  const lat = [];
  const counters = { recording: false, get: () => ({ cpuDone, lightDone }) };
  socks.slice(0, cfg.cpu_clients).forEach((s) => {
    const loop = () => { if (running) s.emit("cpu", {}, () => { cpuDone++; loop(); }); };
    loop();
  });
  socks.slice(cfg.cpu_clients).forEach((s) => {
    const loop = () => {
      if (!running) return;
      const t0 = now();
      s.emit("echo", { t: t0 }, () => {
        lightDone++;
        if (counters.recording) lat.push(now() - t0);
        setTimeout(loop, cfg.light_interval_ms);
      });
    };
    loop();
  });
  const m = await measure(cfg.warmup_ms, cfg.duration_ms, counters);
  running = false;
  lat.sort((x, y) => x - y);
  return finish(socks, { value: pct(lat, 99), unit: "ms (light p99)", p50_ms: pct(lat, 50),
                         p99_ms: pct(lat, 99), light_pings: lat.length,
                         cpu_calls_per_s: m.delta("cpuDone") / m.cpu.seconds, ...m.cpu });
}

async function capacity() {
  await sleep(cfg.warmup_ms);
  const base = serverSnap();
  const t0 = now();
  const { socks, failed } = await connectMany(cfg.clients, 100, 10000, cfg.connect_bound_ms || 90000);
  const connectS = (now() - t0) / 1000;
  // every open client answers one acked echo
  const answered = await new Promise((resolve) => {
    let got = 0, left = socks.length;
    if (!left) resolve(0);
    const timer = setTimeout(() => resolve(got), 20000);
    for (const s of socks) {
      s.timeout(20000).emit("echo", { ok: 1 }, (err) => {
        if (!err) got++;
        if (--left === 0) { clearTimeout(timer); resolve(got); }
      });
    }
  });
  await sleep(500);
  const peak = serverSnap();
  const perConnKb = socks.length && peak.kb ? (peak.kb - base.kb) / socks.length : null;
  return finish(socks, { value: answered, unit: "clients", connected: socks.length, failed,
                         connect_seconds: connectS, base_rss_kb: base.kb, peak_rss_kb: peak.kb,
                         kb_per_conn: perConnKb, base_threads: base.threads,
                         peak_threads: peak.threads,
                         loadgen_rss_kb: Math.round(process.memoryUsage().rss / 1024) });
}

function finish(socks, result) {
  for (const s of socks) s.close();
  // a server process that died during the run (crash, or gunicorn's arbiter
  // killing a worker that missed its heartbeat) makes the figures meaningless
  const gone = (cfg.pids || []).filter((pid) => !alive(pid));
  if (gone.length && !result.error) {
    const at = result.connected !== undefined ? ` with ${result.connected} clients open` : "";
    result.error = `server process ${gone.join(", ")} exited during the run${at} (see the server log)`;
  }
  return result;
}

const table = { echo, broadcast, fairness, capacity };
(async () => {
  const run = table[cfg.workload];
  if (!run) { emitResult({ error: `unknown workload ${cfg.workload}` }); process.exit(2); }
  const result = await run();
  emitResult({ workload: cfg.workload, ...result });
  setTimeout(() => process.exit(0), 200);
})().catch((e) => { emitResult({ error: String(e && e.stack || e) }); process.exit(1); });
