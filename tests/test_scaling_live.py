"""Beyond one process, live: real nginx (ip_hash) in front of two gunicorn
instances sharing a real Redis; ``gunicorn -w 2`` and uWSGI ``--processes 2`` in
WebSocket-only mode; Redis stopped and restarted under traffic.

Needs the Debian packages nginx-light (or nginx) and redis-server.  Every
server listens on 127.0.0.1 on a free port and is stopped by its PID.  nginx's
ip_hash keys on the first three octets of the client address, so the clients
bind to different loopback source addresses (127.0.N.1) to land on both
instances.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import socketio as sio_client
from requests.adapters import HTTPAdapter

from tests.livesupport import free_port
from tests.nginx_support import NginxProcess
from tests.redis_support import RedisServer

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_NGINX = ROOT / "deploy" / "nginx" / "socketio.conf"
WAIT = 10.0  # seconds any single delivery may take


# -- servers -----------------------------------------------------------------------
class Gunicorn:
    """``gunicorn -k gthread`` serving tests/test_scaling_app.py; stopped by PID."""

    def __init__(self, queue_url: str | None, channel: str, instance: str,
                 workers: int = 1, threads: int = 8, shipped_conf: bool = False,
                 workers_by: str = "both", extra_env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.instance = instance
        env = {k: v for k, v in os.environ.items() if not k.startswith("SERVER_")}
        env.update(PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
                   PYTHONUNBUFFERED="1", SCALING_INSTANCE=instance, SERVER_CHANNEL=channel)
        if queue_url:
            env["SERVER_MESSAGE_QUEUE"] = queue_url
        env.update(extra_env or {})
        # workers_by: "env" (SERVER_WORKERS), "cli" (-w N), or "both"
        if workers > 1 and workers_by in ("env", "both"):
            env["SERVER_WORKERS"] = str(workers)
        argv = [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", str(threads),
                "-b", f"127.0.0.1:{self.port}", "--no-control-socket", "--graceful-timeout", "5"]
        if workers_by in ("cli", "both"):
            argv += ["-w", str(workers)]
        if shipped_conf:
            argv += ["-c", str(ROOT / "gunicorn.conf.py")]
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            [*argv, "test_scaling_app:create_app()"],
            cwd=tempfile.gettempdir(), env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 30.0) -> None:
        _wait_http(self.url + "/ping", self.proc, timeout, self.output)

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        _stop(self.proc)
        self._log.close()


class UWSGI:
    """uWSGI with ``processes`` workers serving tests/test_scaling_app.py; stopped by PID.

    No SERVER_WORKERS: the app reads uWSGI's process count itself.
    """

    def __init__(self, queue_url: str, channel: str, workdir: Path, processes: int) -> None:
        exe = shutil.which("uwsgi", path=str(Path(sys.executable).parent))
        if exe is None:
            raise RuntimeError("uwsgi is not installed in this venv: pip install 'uwsgi>=2.0.28'")
        (workdir / "scaling_uwsgi_app.py").write_text(
            "from test_scaling_app import create_app\n\napp = create_app()\n")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SERVER_")}
        env.update(PYTHONUNBUFFERED="1", VIRTUAL_ENV=sys.prefix, SCALING_INSTANCE="u",
                   SERVER_MESSAGE_QUEUE=queue_url, SERVER_CHANNEL=channel)
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            [exe, "--master", "--processes", str(processes), "--threads", "8",
             "--enable-threads", "--lazy-apps", "--single-interpreter", "--die-on-term",
             "--need-app", "--worker-reload-mercy", "5", "--reload-mercy", "5",
             "--http-socket", f"127.0.0.1:{self.port}",
             "--pythonpath", str(ROOT), "--pythonpath", str(ROOT / "tests"),
             "--pythonpath", str(workdir), "--module", "scaling_uwsgi_app:app"],
            cwd=workdir, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    wait_ready = Gunicorn.wait_ready
    output = Gunicorn.output
    stop = Gunicorn.stop


class Nginx(NginxProcess):
    """The shipped deploy/nginx/socketio.conf with its ports replaced; stopped by PID."""

    def __init__(self, upstream_ports: list[int]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        site = SHIPPED_NGINX.read_text()
        site = _replace_once(site, "listen 127.0.0.1:8080;", f"listen 127.0.0.1:{self.port};")
        for shipped, port in zip(("127.0.0.1:5000;", "127.0.0.1:5001;"), upstream_ports):
            site = _replace_once(site, f"server {shipped}", f"server 127.0.0.1:{port};")
        super().__init__(site)

    def wait_ready(self, timeout: float = 30.0) -> None:
        _wait_http(self.url + "/ping", self.proc, timeout, self.error_log)

    def output(self) -> str:
        return self.error_log()


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"the shipped nginx config should contain {old!r} once"
    return text.replace(old, new)


def _wait_http(url: str, proc: subprocess.Popen, timeout: float, output) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {proc.returncode}:\n{output()}")
        try:
            if requests.get(url, timeout=2).text == "pong":
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout}s:\n{output()}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# -- clients ---------------------------------------------------------------------
class SourceAddressAdapter(HTTPAdapter):
    """requests adapter whose connections leave from ``source`` (a loopback address)."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def http_session(source: str | None) -> requests.Session:
    session = requests.Session()
    if source:
        session.mount("http://", SourceAddressAdapter(source))
    return session


class Inbox:
    """Everything a client received, by event; waits for a given delivery."""

    def __init__(self) -> None:
        self.events: dict[str, list] = defaultdict(list)
        self.cond = threading.Condition()

    def handler(self, event: str):
        def record(data=None):
            with self.cond:
                self.events[event].append(data)
                self.cond.notify_all()
        return record

    def wait_for(self, event: str, data, timeout: float = WAIT) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: data in self.events[event], timeout)


class Client:
    """A python-socketio client with an inbox, optionally from a chosen source address."""

    EVENTS = ("heard", "room_msg", "server_msg", "ext", "echo")

    def __init__(self, url: str, transports: list[str], source: str | None = None,
                 name: str = "") -> None:
        self.name = name or f"{transports}@{source}"
        self.inbox = Inbox()
        self._socket = None
        options: dict = {"http_session": http_session(source)}
        if source and "websocket" in transports:
            host, port = url.removeprefix("http://").split(":")
            self._socket = socket.create_connection((host, int(port)), timeout=10,
                                                    source_address=(source, 0))
            options["websocket_extra_options"] = {"socket": self._socket}
        self.sio = sio_client.Client(reconnection=False, **options)
        for event in self.EVENTS:
            self.sio.on(event, self.inbox.handler(event))
        self.sio.connect(url, transports=transports, wait_timeout=10)

    def whoami(self) -> dict:
        return self.sio.call("whoami", timeout=WAIT)

    def close(self) -> None:
        self.sio.disconnect()
        if self._socket is not None:
            self._socket.close()


def assert_exactly(clients: list[Client], event: str, expected: dict[str, list]) -> None:
    """Each client received exactly ``expected[name]`` for ``event``, in any order."""
    for client in clients:
        got = sorted(map(str, client.inbox.events[event]))
        want = sorted(map(str, expected.get(client.name, [])))
        assert got == want, (f"client {client.name}: expected {event!r} {want}, got {got}")


# -- fixtures ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def redis():
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(redis):
    """Two single-worker gunicorn instances on one queue, nginx in front."""
    # as docs/nginx.md says: believe X-Forwarded-* from nginx's address only
    instances = [Gunicorn(redis.url, "scaling-live", str(n),
                          extra_env={"SERVER_TRUSTED_PROXIES": "127.0.0.1"})
                 for n in range(2)]
    proxy = None
    try:
        for instance in instances:
            instance.wait_ready()
        proxy = Nginx([i.port for i in instances])
        proxy.wait_ready()
        yield instances, proxy
    finally:
        if proxy is not None:
            proxy.stop()
        for instance in instances:
            instance.stop()


def source_for_each_instance(proxy_url: str) -> dict[str, str]:
    """A loopback source address that ip_hash sends to each instance."""
    found: dict[str, str] = {}
    for n in range(1, 41):  # bounded: ip_hash spreads /24s evenly enough
        source = f"127.0.{n}.1"
        instance = http_session(source).get(proxy_url + "/whoami", timeout=WAIT).json()
        found.setdefault(instance["instance"], source)
        if len(found) == 2:
            return found
    raise AssertionError(f"ip_hash sent 40 source networks to {sorted(found)} only")


# -- nginx in front of two instances ----------------------------------------------
def test_nginx_sticky_sessions_deliver_each_emit_once_to_its_audience(cluster, redis):
    _, proxy = cluster
    sources = source_for_each_instance(proxy.url)
    clients: list[Client] = []
    try:
        for instance, source in sorted(sources.items()):
            for transports in (["polling"], ["websocket"], ["polling", "websocket"]):
                clients.append(Client(proxy.url, transports, source,
                                      name=f"{instance}:{'+'.join(transports)}"))
        # sticky: every client (each poll of the polling ones) stays on its instance
        for client in clients:
            for _ in range(3):
                where = client.whoami()["instance"]
                assert where == client.name[0], (
                    f"client {client.name} reached instance {where}: ip_hash is not sticky")
        by_name = {c.name: c for c in clients}
        everyone = {c.name: None for c in clients}
        blue = ["0:polling", "1:websocket", "1:polling+websocket"]
        for name in blue:
            assert by_name[name].sio.call("join", "blue", timeout=WAIT) == "joined"

        # a broadcast from a client on instance 0
        by_name["0:websocket"].sio.emit("shout", "b1")
        # a room emit from a client on instance 1
        by_name["1:polling"].sio.emit("to_room", ("blue", "r1"))
        # a server-side emit from an HTTP handler (through nginx, on instance 1)
        session = http_session(sources["1"])
        assert session.get(proxy.url + "/emit", params={"event": "server_msg", "data": "s1"},
                           timeout=WAIT).text == "sent"
        # an external write-only emitter to the room
        script = textwrap.dedent(f"""
            from server import SocketIO
            SocketIO(message_queue={redis.url!r}, channel="scaling-live").emit(
                "ext", "x1", to="blue")
        """)
        done = subprocess.run([sys.executable, "-c", script], check=False, timeout=60, cwd=ROOT,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

        for client in clients:
            assert client.inbox.wait_for("heard", "b1"), f"{client.name} missed the broadcast"
            assert client.inbox.wait_for("server_msg", "s1"), \
                f"{client.name} missed the server-side emit"
        for name in blue:
            assert by_name[name].inbox.wait_for("room_msg", "r1"), f"{name} missed r1"
            assert by_name[name].inbox.wait_for("ext", "x1"), f"{name} missed the emitter"
        # fences: a last broadcast from each instance; Redis keeps each
        # publisher's order and each instance handles the channel in order, so
        # a duplicate or a stray room message would have arrived before them
        by_name["0:polling"].sio.emit("shout", "fence0")
        by_name["1:websocket"].sio.emit("shout", "fence1")
        for client in clients:
            for fence in ("fence0", "fence1"):
                assert client.inbox.wait_for("heard", fence), f"{client.name} missed {fence}"
        assert_exactly(clients, "heard", {n: ["b1", "fence0", "fence1"] for n in everyone})
        assert_exactly(clients, "server_msg", {n: ["s1"] for n in everyone})
        assert_exactly(clients, "room_msg", {n: ["r1"] for n in blue})
        assert_exactly(clients, "ext", {n: ["x1"] for n in blue})
    finally:
        for client in clients:
            client.close()


# -- the queue goes away and comes back ----------------------------------------------
def _until(attempt, timeout: float = 30.0, step: float = 0.5) -> bool:
    """Call ``attempt(n, step)`` until it returns True, for at most ``timeout`` seconds;
    each attempt waits up to ``step`` seconds for its event."""
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        if attempt(n, step):
            return True
        n += 1
    return False


def test_redis_restart_keeps_local_traffic_and_resumes_cross_instance(cluster, redis):
    instances, _ = cluster
    a = Client(instances[0].url, ["websocket"], name="a")  # on instance 0
    b = Client(instances[1].url, ["websocket"], name="b")  # on instance 1
    try:
        a.sio.emit("shout", "before")
        assert b.inbox.wait_for("heard", "before"), "cross-instance broadcast failed at start"
        log_before = instances[0].output().count("Cannot publish to redis")

        redis.stop()
        # local traffic carries on: replies, broadcasts to local clients,
        # server-side emits from HTTP handlers
        for n in range(10):
            a.sio.emit("echo", f"echo{n}")
            a.sio.emit("shout", f"down{n}")
        for n in range(10):
            assert a.inbox.wait_for("echo", f"echo{n}"), f"local echo{n} lost with Redis down"
            assert a.inbox.wait_for("heard", f"down{n}"), f"local down{n} lost with Redis down"
        assert requests.get(instances[0].url + "/emit", timeout=WAIT,
                            params={"event": "server_msg", "data": "local"}).text == "sent"
        assert a.inbox.wait_for("server_msg", "local")
        # 20 failed publishes were logged as one problem, not 40 lines
        failures = instances[0].output().count("Cannot publish to redis") - log_before
        assert 1 <= failures <= 2, (
            f"expected the publish failure logged once (retrying + giving up), got {failures} "
            f"lines:\n{instances[0].output()[-3000:]}")

        redis.start()  # same port

        def probe(origin: Client, target: Client, tag: str):
            def attempt(n: int, step: float) -> bool:
                origin.sio.emit("shout", f"{tag}{n}")
                return target.inbox.wait_for("heard", f"{tag}{n}", timeout=step)
            return attempt

        # python-socketio's listener reconnects on its own (1, 2, 4… s backoff)
        assert _until(probe(a, b, "probe-ab")), \
            "instance 0 → instance 1 traffic did not resume within 30 s of Redis restarting"
        assert _until(probe(b, a, "probe-ba")), \
            "instance 1 → instance 0 traffic did not resume within 30 s of Redis restarting"
        a.sio.emit("shout", "after")
        assert b.inbox.wait_for("heard", "after") and a.inbox.wait_for("heard", "after")
        b.sio.emit("shout", "fence")
        assert a.inbox.wait_for("heard", "fence") and b.inbox.wait_for("heard", "fence")
        # what was published while Redis was down is lost for the other instance
        lost = [m for m in b.inbox.events["heard"] if str(m).startswith("down")]
        assert lost == [], f"instance 1 should not have got messages sent during the outage: {lost}"
        assert b.inbox.events["heard"].count("after") == 1
        assert a.inbox.events["heard"].count("after") == 1
    finally:
        if redis.proc is None:
            redis.start()
        a.close()
        b.close()


# -- gunicorn -w 2, no sticky sessions ------------------------------------------------
def check_two_workers_share_traffic(server) -> None:
    """WebSocket clients on both workers of ``server`` get every broadcast and room
    emit exactly once; a polling request gets the explaining 400."""
    clients: list[Client] = []
    try:
        pids: dict[int, list[Client]] = defaultdict(list)
        # Connections arrive in concurrent bursts: connected one after another,
        # a quiet machine lets the same worker accept every one of them.
        def connect(n: int) -> Client:
            return Client(server.url, ["websocket"], name=f"c{n}")

        with ThreadPoolExecutor(max_workers=8) as pool:
            for burst in range(6):  # bounded: until both workers have clients
                made = list(pool.map(connect, range(burst * 8, burst * 8 + 8)))
                clients.extend(made)
                for client in made:
                    pids[client.whoami()["pid"]].append(client)
                if len(pids) == 2:
                    break
        assert len(pids) == 2, (
            f"{len(clients)} connections in bursts of 8 all reached worker(s) "
            f"{sorted(pids)}: cannot test cross-worker delivery")
        first, second = (group[0] for group in pids.values())
        assert first.sio.call("join", "red", timeout=WAIT) == "joined"
        assert second.sio.call("join", "red", timeout=WAIT) == "joined"
        first.sio.emit("shout", "w1")
        second.sio.emit("to_room", ("red", "r1"))
        for client in clients:
            assert client.inbox.wait_for("heard", "w1"), f"{client.name} missed w1"
        for client in (first, second):
            assert client.inbox.wait_for("room_msg", "r1"), f"{client.name} missed r1"
        first.sio.emit("shout", "fence-a")
        second.sio.emit("shout", "fence-b")
        for client in clients:
            assert client.inbox.wait_for("heard", "fence-a")
            assert client.inbox.wait_for("heard", "fence-b")
        assert_exactly(clients, "heard", {c.name: ["w1", "fence-a", "fence-b"] for c in clients})
        assert_exactly(clients, "room_msg", {first.name: ["r1"], second.name: ["r1"]})

        # a client that tries polling is told why it is refused
        r = requests.get(server.url + "/socket.io/?EIO=4&transport=polling", timeout=WAIT)
        assert r.status_code == 400, f"expected 400, got {r.status_code}: {r.text}"
        assert "this server runs 2 workers without sticky sessions" in r.text, r.text
        assert "transports=['websocket']" in r.text, r.text
    finally:
        for client in clients:
            client.close()


def test_two_gunicorn_workers_websocket_only_share_broadcasts(redis):
    server = Gunicorn(redis.url, "scaling-workers", "w", workers=2)
    try:
        server.wait_ready()
        check_two_workers_share_traffic(server)
    finally:
        server.stop()


def test_two_uwsgi_processes_websocket_only_share_broadcasts(redis, tmp_path):
    server = UWSGI(redis.url, "scaling-uwsgi", tmp_path, processes=2)
    try:
        server.wait_ready()
        check_two_workers_share_traffic(server)
    finally:
        server.stop()


def test_two_workers_without_a_queue_refuse_to_start():
    server = Gunicorn(None, "scaling-noqueue", "n", workers=2)
    try:
        server.proc.wait(60)
        assert server.proc.returncode != 0, "gunicorn started two workers without a queue"
        assert "SERVER_MESSAGE_QUEUE" in server.output(), server.output()[-3000:]
    finally:
        server.stop()


@pytest.mark.parametrize("workers_by", ["env", "cli"])
def test_shipped_gunicorn_conf_turns_worker_mode_on(redis, workers_by):
    """SERVER_WORKERS=2, or gunicorn -w 2 on the command line, with gunicorn.conf.py."""
    server = Gunicorn(redis.url, "scaling-conf", "c", workers=2, shipped_conf=True,
                      workers_by=workers_by)
    client = None
    try:
        server.wait_ready()
        r = requests.get(server.url + "/socket.io/?EIO=4&transport=polling", timeout=WAIT)
        assert r.status_code == 400 and "runs 2 workers" in r.text, (
            f"{workers_by}: expected the two-worker 400, got {r.status_code}: {r.text}")
        client = Client(server.url, ["websocket"], name="conf")
        assert client.sio.call("echo", "x", timeout=WAIT) is None
        assert client.inbox.wait_for("echo", "x")
        deadline = time.monotonic() + 30  # the second worker may still be booting
        while server.output().count("Booting worker") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.output().count("Booting worker") == 2, server.output()
    finally:
        if client is not None:
            client.close()
        server.stop()


# -- the official JavaScript client against two workers ----------------------------------
JS_SCRIPT = r"""
const { io } = require("socket.io-client");
const url = process.argv[2];
const STEP = 10000;

function connect(transports) {
  const options = { reconnection: false, forceNew: true, timeout: STEP };
  if (transports) options.transports = transports;
  const socket = io(url, options);
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => { socket.close(); reject(err); });
  });
}

function waitFor(predicate, ms) {
  return new Promise((resolve) => {
    const start = Date.now();
    const tick = () => {
      if (predicate()) return resolve(true);
      if (Date.now() - start > ms) return resolve(false);
      setTimeout(tick, 20);
    };
    tick();
  });
}

(async () => {
  const out = {};
  try {  // the defaults start with polling: refused by a multi-worker server
    const s = await connect(undefined);
    out.default = "connected";
    s.close();
  } catch (err) {
    out.default = "refused: " + err.message;
  }
  const sockets = [], pids = [], heard = [];
  // batches of simultaneous connections: which worker accepts is the kernel's
  // choice, and one at a time an idle worker may win every time
  for (let round = 0; round < 6 && new Set(pids).size < 2; round++) {
    const batch = await Promise.all(Array.from({ length: 8 }, () => connect(["websocket"])));
    for (const s of batch) {
      const box = [];
      s.on("heard", (d) => box.push(d));
      sockets.push(s); heard.push(box);
    }
    const answers = await Promise.all(batch.map((s) => s.timeout(STEP).emitWithAck("whoami")));
    for (const a of answers) pids.push(a.pid);
  }
  // the fence follows the broadcast from the same client, through the same
  // worker and queue: a duplicate of js1 would arrive before it
  sockets[0].emit("shout", "js1");
  sockets[0].emit("shout", "fence");
  out.arrived = await waitFor(() => heard.every((b) => b.includes("fence")), STEP);
  out.pids = pids;
  out.heard = heard;
  sockets.forEach((s) => s.close());
  console.log(JSON.stringify(out));
  process.exit(0);
})().catch((err) => { console.log(JSON.stringify({ error: String(err) })); process.exit(0); });
"""


def test_official_js_client_with_websocket_transport_on_two_workers(redis, tmp_path):
    node = shutil.which("node")
    modules = ROOT / "tests" / "js" / "node_modules"
    if node is None or not (modules / "socket.io-client").is_dir():
        pytest.skip("node and tests/js/node_modules (npm ci --prefix tests/js) are needed")
    script = tmp_path / "two_workers.js"
    script.write_text(JS_SCRIPT)
    server = Gunicorn(redis.url, "scaling-js", "j", workers=2)
    try:
        server.wait_ready()
        done = subprocess.run([node, str(script), server.url], check=False, timeout=90,
                              capture_output=True, text=True,
                              env={**os.environ, "NODE_PATH": str(modules)})
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert "error" not in result, result
        assert result["default"].startswith("refused"), (
            f"a JS client with default transports (polling first) should be refused: {result}")
        assert len(set(result["pids"])) == 2, f"JS clients all on one worker: {result['pids']}"
        assert result["arrived"], f"not every JS client got the broadcast: {result['heard']}"
        for n, box in enumerate(result["heard"]):
            assert box == ["js1", "fence"], f"JS client {n} got {box}"
    finally:
        server.stop()
