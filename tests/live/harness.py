# design:
#   The test process starts each server as a subprocess in a session of its
#   own (so its workers, uWSGI's router or Werkzeug's reloader child share
#   one process group whose id is the PID we started).  Readiness is an HTTP
#   GET polled with a deadline.  Stopping signals that PID (SIGTERM), waits a
#   bounded time, then SIGKILLs the group we created: never a process found
#   by name.  Server output goes to a file that conftest attaches to failing
#   test reports.  Clients record events from their own threads into a
#   Recorder (one lock + condition); tests wait on the condition, with
#   deadlines, never on sleeps.
"""Live-test harness: real servers as subprocesses, clients that record events."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "apps"
JS_DIR = ROOT / "tests" / "js"
BIN = Path(sys.executable).parent

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a server subprocess: ours, minus SERVER_*, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVER_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(APPS)])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass(frozen=True)
class ServerKind:
    """How to start one kind of server: ``command(port, app) -> (argv, env)``."""

    name: str
    command: Callable[[int, str], tuple[list[str], dict[str, str]]]
    # the sharp edges a kind may have, for skip/xfail decisions in tests
    needs: tuple[str, ...] = ()


def _gunicorn(port: int, app: str) -> tuple[list[str], dict[str, str]]:
    return ([str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"), app],
            server_env(SERVER_BIND=f"127.0.0.1:{port}", SERVER_THREADS="100",
                       SERVER_GRACEFUL_TIMEOUT="5"))


def _uwsgi(section: str) -> Callable[[int, str], tuple[list[str], dict[str, str]]]:
    def command(port: int, app: str) -> tuple[list[str], dict[str, str]]:
        ini = str(ROOT / "uwsgi.ini") + (f":{section}" if section else "")
        return ([str(BIN / "uwsgi"), "--ini", ini, "--module", app],
                server_env(SERVER_BIND=f"127.0.0.1:{port}", SERVER_THREADS="100",
                           SERVER_GRACEFUL_TIMEOUT="5"))
    return command


def _waitress(port: int, app: str) -> tuple[list[str], dict[str, str]]:
    return ([str(BIN / "waitress-serve"), "--asyncore-use-poll", "--threads", "100",
             "--connection-limit", "1000",
             "--listen", f"127.0.0.1:{port}", app], server_env())


def _werkzeug(port: int, app: str) -> tuple[list[str], dict[str, str]]:
    return ([sys.executable, "-m", "server", "run", "--server", "werkzeug",
             "--host", "127.0.0.1", "--port", str(port), app], server_env())


def _werkzeug_debug(port: int, app: str) -> tuple[list[str], dict[str, str]]:
    module = app.partition(":")[0]
    return ([sys.executable, str(APPS / f"{module}.py"), "--port", str(port), "--debug"],
            server_env())


SERVERS: dict[str, ServerKind] = {
    "gunicorn-gthread": ServerKind("gunicorn-gthread", _gunicorn),
    "uwsgi-router": ServerKind("uwsgi-router", _uwsgi("router"), needs=("uwsgi",)),
    "uwsgi-http-socket": ServerKind("uwsgi-http-socket", _uwsgi(""), needs=("uwsgi",)),
    "waitress": ServerKind("waitress", _waitress),
    "werkzeug": ServerKind("werkzeug", _werkzeug),
    "werkzeug-debug-run": ServerKind("werkzeug-debug-run", _werkzeug_debug),
}

#: transport cell name -> the client's ``transports`` list
TRANSPORTS: dict[str, list[str]] = {
    "websocket": ["websocket"],
    "polling": ["polling"],
    "upgrade": ["polling", "websocket"],
}


class ServerDidNotStart(RuntimeError):
    pass


@dataclass
class LiveServer:
    """A server subprocess on 127.0.0.1, stopped by its own PID."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    ready_path: str = "/ready"
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = START_TIMEOUT) -> LiveServer:
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerDidNotStart(f"{self.name} exited with {self.proc.returncode} "
                                        f"before answering; log:\n{self.log_tail()}")
            try:
                status = self.probe()
                if status == 200:
                    return self
                last = f"HTTP {status}"
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.1)
        self.stop()
        raise ServerDidNotStart(f"{self.name} did not answer GET {self.ready_path} within "
                                f"{timeout}s (last: {last}); log:\n{self.log_tail()}")

    def probe(self) -> int:
        """One readiness request: its HTTP status (OSError when not answering)."""
        with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as resp:
            return resp.status

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM to our PID, bounded wait, then SIGKILL to the group we created."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.note(f"did not stop within {timeout}s of SIGTERM: SIGKILL")
        # leftovers of our own group (uWSGI workers, Werkzeug's reloader child)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)
        return self.proc.returncode

    def note(self, text: str) -> None:
        with open(self.log_path, "a") as log:
            log.write(f"[harness] {text}\n")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


@contextlib.contextmanager
def running(kind: ServerKind, log_dir: Path, app: str = "liveapp:app",
            **env_extra: str) -> Iterator[LiveServer]:
    """``kind`` serving ``app`` on a free port (``env_extra`` added to its environment)."""
    port = free_port()
    argv, env = kind.command(port, app)
    env.update(env_extra)
    server = LiveServer(kind.name, argv, env, port, log_dir / f"{kind.name}-{port}.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Recorder:
    """Events a client received, by name, in arrival order; waited on with deadlines."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._events: dict[str, list[Any]] = {}

    def add(self, name: str, value: Any) -> None:
        with self._cond:
            self._events.setdefault(name, []).append(value)
            self._cond.notify_all()

    def get(self, name: str) -> list[Any]:
        with self._cond:
            return list(self._events.get(name, []))

    def wait(self, name: str, count: int = 1, timeout: float = 10.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._events.get(name, [])) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = self._events.get(name, [])
                    raise AssertionError(f"expected {count} {name!r} event(s) within "
                                         f"{timeout}s, got {len(got)}: {got[:5]!r}")
                self._cond.wait(left)
            return list(self._events[name])


RECORDED_EVENTS = ("welcome", "room_message", "broadcast", "tick", "burst_item", "held")


def _recording(recorder: Recorder, name: str) -> Callable[..., None]:
    def handler(data: Any = None) -> None:
        recorder.add(name, data)
    return handler


def python_client(url: str, transports: list[str], auth: Any = None) -> tuple[Any, Recorder]:
    """A connected python-socketio Client and the Recorder of what it receives."""
    from tests.sioclient import OrderedClient

    client = OrderedClient(reconnection=False)
    recorder = Recorder()
    for name in RECORDED_EVENTS:
        client.on(name, _recording(recorder, name))
    client.on("disconnect", lambda reason=None: recorder.add("disconnect", reason))
    client.connect(url, transports=transports, auth=auth, wait_timeout=10)
    return client, recorder


def raw_exchange(port: int, *parts: bytes, pause: float = 0.0,
                 wait: float = 20.0) -> tuple[str, dict[str, str], bytes]:
    """Send ``parts`` (``pause`` seconds before each) and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        for part in parts:
            if pause:
                threading.Event().wait(pause)  # the slow client under test, not a sync
            s.sendall(part)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return lines[0], headers, body


def node() -> str | None:
    return shutil.which("node")


def js_client_ready() -> str | None:
    """None if the JS client can run, else why not."""
    if node() is None:
        return "node is not installed"
    if not (JS_DIR / "node_modules" / "socket.io-client").is_dir():
        return "socket.io-client is not installed: npm ci --prefix tests/js"
    return None


def run_js(url: str, transports: list[str], scenario: str, timeout: float = 60.0) -> Any:
    """Run a scenario of tests/js/client.js; return its JSON result."""
    argv = [node() or "node", str(JS_DIR / "client.js"), url, ",".join(transports), scenario,
            str(int(timeout * 1000))]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout + 10,
                          cwd=JS_DIR)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {done.returncode}\nstdout: "
                             f"{done.stdout[-2000:]}\nstderr: {done.stderr[-2000:]}")
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"JS client printed no JSON: {done.stdout[-2000:]!r} "
                             f"stderr: {done.stderr[-2000:]}") from None
