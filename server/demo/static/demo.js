// The demo page: chat on '/', the CPU job on '/jobs'.  The job gets a
// connection of its own (forceNew), which keeps its progress traffic off the
// chat's connection; the server orders events per client and namespace, so
// the chat does not wait for the job either way.
"use strict";

const $ = (id) => document.getElementById(id);
let chat = null;
let jobs = null;
let room = null;
let mySid = null;
const ackedIds = new Set();
const presenceOf = new Map(); // room -> latest members (may come before the join ack)

function line(text, cls, id) {
  const p = document.createElement("p");
  p.textContent = text;
  if (cls) p.className = cls;
  if (id !== undefined) {
    p.dataset.id = id;
    if (ackedIds.has(id)) p.classList.add("acked");
  }
  $("log").append(p);
  $("log").scrollTop = $("log").scrollHeight;
}

function showTransport() {
  $("transport").textContent = chat.io.engine.transport.name;
}

function showPresence(members) {
  const list = $("presence");
  const to = $("to");
  const chosen = to.value;
  list.replaceChildren();
  to.replaceChildren(new Option("everyone in the room", ""));
  for (const m of members) {
    const li = document.createElement("li");
    li.textContent = m.sid === mySid ? m.name + " (you)" : m.name;
    list.append(li);
    if (m.sid !== mySid) to.append(new Option("only " + m.name, m.sid));
  }
  to.value = [...to.options].some((o) => o.value === chosen) ? chosen : "";
}

function join(newRoom) {
  chat.emit("join", newRoom, (reply) => {
    if (reply.error) return line(reply.error, "error");
    room = reply.room;
    $("room-name").textContent = room;
    showPresence(presenceOf.get(room) || []);
    line("you joined " + room, "notice");
  });
}

function connect(name, firstRoom) {
  chat = io({ auth: { name } });
  jobs = io("/jobs", { auth: { name }, forceNew: true });

  chat.on("connect", () => {
    $("login").hidden = true;
    $("chat").hidden = false;
    $("me").textContent = name;
    showTransport();
    chat.io.engine.on("upgrade", showTransport);
    join(room || firstRoom);
  });
  chat.on("connect_error", (err) => {
    $("login-error").textContent = "Not connected: " + err.message;
    if (!chat.active) { // refused by the server: ask again
      $("login").hidden = false;
      $("chat").hidden = true;
      jobs.disconnect();
    }
  });
  chat.on("disconnect", (reason) => line("disconnected: " + reason, "notice"));
  chat.on("welcome", (w) => { mySid = w.sid; });
  chat.on("presence", (p) => {
    presenceOf.set(p.room, p.members);
    if (p.room === room) showPresence(p.members);
  });
  chat.on("said", (m) => line(m.from + ": " + m.text, "", m.id));
  chat.on("private", (m) => line("(private) " + m.from + ": " + m.text, "private"));
  chat.on("clock", (c) => { $("clock").textContent = c.time; });

  jobs.on("progress", (p) => {
    $("job-progress").value = p.done / p.limit;
    $("job-result").textContent = p.primes.toLocaleString() + " primes so far";
  });
}

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  $("login-error").textContent = "";
  connect($("name").value.trim(), $("room").value.trim());
});

$("say").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value;
  const to = $("to").value;
  if (to) {
    const toName = $("to").selectedOptions[0].textContent.replace(/^only /, "");
    chat.emit("private", { to, text }, (reply) => {
      if (reply.error) return line(reply.error, "error");
      line("(private to " + toName + ") " + text, "private acked");
    });
  } else {
    chat.emit("say", { room, text }, (reply) => {
      if (reply.error) return line(reply.error, "error");
      ackedIds.add(reply.id);
      document.querySelectorAll('#log p[data-id="' + reply.id + '"]')
        .forEach((p) => p.classList.add("acked"));
    });
  }
  $("text").value = "";
});

$("switch").addEventListener("submit", (e) => {
  e.preventDefault();
  const next = $("new-room").value.trim();
  if (!next || next === room) return;
  chat.emit("leave", room);
  room = null;
  join(next);
  $("new-room").value = "";
});

$("job").addEventListener("submit", (e) => {
  e.preventDefault();
  $("run-job").disabled = true;
  $("job-progress").value = 0;
  $("job-result").textContent = "running…";
  jobs.emit("primes", Number($("limit").value), (r) => {
    $("run-job").disabled = false;
    $("job-result").textContent = r.error ? r.error
      : r.primes.toLocaleString() + " primes below " + r.limit.toLocaleString() +
        " (largest " + r.largest.toLocaleString() + ") in " + r.seconds + " s";
    $("job-result").className = r.error ? "error" : "";
  });
});

// the round trip of a tiny event, once a second: it stays small while a job runs
setInterval(() => {
  if (!chat || !chat.connected) return;
  const sent = performance.now();
  chat.emit("ping_server", sent, () => {
    $("rtt").textContent = Math.round(performance.now() - sent) + " ms";
  });
}, 1000);
