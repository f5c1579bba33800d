// Live-test scenarios with the official Socket.IO JavaScript client.
//
//   node client.js URL TRANSPORTS SCENARIO [TIMEOUT_MS]
//
// TRANSPORTS is comma-separated ("websocket", "polling", "polling,websocket").
// SCENARIO is one of the names in SCENARIOS, or "all" to run them in turn.
// Prints one JSON object on stdout: {scenario: {ok, ...details}} and exits 0
// whether or not the scenarios passed (pytest asserts on the JSON); exits 2
// on bad arguments and 3 if the whole run overran TIMEOUT_MS.
"use strict";

const { io } = require("socket.io-client");

const [url, transportArg, scenarioArg, timeoutArg] = process.argv.slice(2);
if (!url || !transportArg || !scenarioArg) {
  process.stderr.write("usage: node client.js URL TRANSPORTS SCENARIO [TIMEOUT_MS]\n");
  process.exit(2);
}
const transports = transportArg.split(",");
const totalTimeout = Number(timeoutArg || 60000);
const STEP_TIMEOUT = 15000;

function connect(auth) {
  const socket = io(url, {
    transports,
    auth,
    reconnection: false,
    forceNew: true,
    timeout: STEP_TIMEOUT,
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("connect timed out")), STEP_TIMEOUT);
    socket.once("connect", () => { clearTimeout(timer); resolve(socket); });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      reject(new Error(`connect_error: ${err.message}`));
    });
  });
}

// the next `count` events called `name`, in order
function collect(socket, name, count) {
  return new Promise((resolve, reject) => {
    const got = [];
    const timer = setTimeout(
      () => reject(new Error(`expected ${count} ${name} events, got ${got.length}`)),
      STEP_TIMEOUT);
    socket.on(name, (data) => {
      got.push(data);
      if (got.length === count) { clearTimeout(timer); resolve(got); }
    });
  });
}

function call(socket, event, data) {
  return socket.timeout(STEP_TIMEOUT).emitWithAck(event, data);
}

function upgraded(socket) {
  // polling->websocket: wait until the engine has switched transports
  if (!transports.includes("websocket") || socket.io.engine.transport.name === "websocket") {
    return Promise.resolve(socket.io.engine.transport.name);
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(socket.io.engine.transport.name), STEP_TIMEOUT);
    socket.io.engine.once("upgrade", (t) => { clearTimeout(timer); resolve(t.name); });
  });
}

const SCENARIOS = {
  async connect_auth() {
    const auth = { token: "js-token", n: 7 };
    const socket = io(url, { transports, auth, reconnection: false, forceNew: true });
    const welcome = collect(socket, "welcome", 1);
    const [message] = await welcome;
    const transport = await upgraded(socket);
    const echo = await call(socket, "echo", { text: "héllo", list: [1, 2, 3] });
    socket.disconnect();
    return {
      ok: JSON.stringify(message.auth) === JSON.stringify(auth) &&
        echo.text === "héllo" && echo.list.join() === "1,2,3",
      auth: message.auth, echo, transport,
    };
  },

  async binary() {
    const socket = await connect();
    const blob = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < blob.length; i++) blob[i] = (i * 7 + 3) % 256;
    const back = await call(socket, "echo", blob);
    socket.disconnect();
    const bytes = Buffer.from(back);
    return { ok: bytes.equals(blob), length: bytes.length };
  },

  async rooms() {
    const [a, b, c] = await Promise.all([connect(), connect(), connect()]);
    const seen = { a: [], b: [], c: [] };
    a.on("room_message", (m) => seen.a.push(m));
    b.on("room_message", (m) => seen.b.push(m));
    c.on("room_message", (m) => seen.c.push(m));
    await call(a, "join", "js-red");
    await call(b, "join", "js-blue");
    await call(a, "to_room", { room: "js-red", data: "for red" });
    await call(b, "to_room", { room: "js-blue", data: "for blue" });
    // a round trip on each socket: anything sent to it earlier has arrived
    await Promise.all([a, b, c].map((s) => call(s, "echo", "flush")));
    [a, b, c].forEach((s) => s.disconnect());
    return {
      ok: seen.a.join() === "for red" && seen.b.join() === "for blue" && seen.c.length === 0,
      seen,
    };
  },

  async broadcast() {
    const sockets = await Promise.all([1, 2, 3].map(() => connect()));
    const waits = sockets.map((s) => collect(s, "broadcast", 1));
    await call(sockets[0], "broadcast", "to everyone");
    const got = (await Promise.all(waits)).map((list) => list[0]);
    sockets.forEach((s) => s.disconnect());
    return { ok: got.every((m) => m === "to everyone"), got };
  },

  async background() {
    const socket = await connect();
    const ticks = collect(socket, "tick", 5);
    await call(socket, "start_ticks", 5);
    const got = await ticks;
    socket.disconnect();
    return { ok: got.join() === "0,1,2,3,4", got };
  },

  async server_disconnect() {
    const socket = await connect();
    const reason = new Promise((resolve) => socket.once("disconnect", resolve));
    socket.emit("kick_me");
    const why = await Promise.race([
      reason,
      new Promise((resolve) => setTimeout(() => resolve("timed out"), STEP_TIMEOUT)),
    ]);
    return { ok: why === "io server disconnect", reason: why };
  },

  async burst() {
    const socket = await connect();
    const items = collect(socket, "burst_item", 50);
    const count = await call(socket, "burst", 50);
    const got = await items;
    socket.disconnect();
    const inOrder = got.every((n, i) => n === i);
    return { ok: count === 50 && got.length === 50 && inOrder, count, received: got.length, inOrder };
  },
};

async function runOne(name) {
  try {
    return await SCENARIOS[name]();
  } catch (err) {
    return { ok: false, error: String(err && err.message ? err.message : err) };
  }
}

async function main() {
  const names = scenarioArg === "all" ? Object.keys(SCENARIOS) : [scenarioArg];
  const unknown = names.filter((n) => !(n in SCENARIOS));
  if (unknown.length) {
    process.stderr.write(`unknown scenario ${unknown.join()}; known: ${Object.keys(SCENARIOS).join()}, all\n`);
    process.exit(2);
  }
  const results = {};
  for (const name of names) results[name] = await runOne(name);
  process.stdout.write(JSON.stringify(results) + "\n");
  process.exit(0);
}

setTimeout(() => {
  process.stderr.write(`overran ${totalTimeout} ms\n`);
  process.exit(3);
}, totalTimeout).unref();
main();
