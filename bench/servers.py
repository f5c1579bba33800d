"""The servers under test: a name -> how-to-start table, start on a free
loopback port pinned to core 0, readiness probe, stop by PID.

Every server serves the same handlers (bench/apps/*_app.py, bench/node/server.js).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from envs import APPS, NODE_DIR, PEERS_PY, PROJECT_PY, PROJECT_VENV, ROOT

SERVER_CORE = "0"
BASELINE = "fsio-eventlet"  # ratios are to Flask-SocketIO on eventlet


@dataclass(frozen=True)
class ServerSpec:
    name: str
    label: str
    argv: Callable[[int], list[str]]
    env: dict
    cwd: Path = APPS
    #: an HTTP endpoint probed during the capacity run (ours: the product's)
    health: str = "/health"
    #: run only when named in --only (a variant, not one of the compared servers)
    extra: bool = False


def _gunicorn(py: Path, module: str, worker: str = "gthread") -> Callable[[int], list[str]]:
    return lambda port: [str(py), "-m", "gunicorn", "-k", worker, "-w", "1", "--threads", "100",
                         "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5",
                         "--no-control-socket", module]


SERVERS: dict[str, ServerSpec] = {s.name: s for s in [
    # the product's worker class (gunicorn.conf.py): gthread plus its own lanes
    ServerSpec("ours-gunicorn", "server, gunicorn gthread",
               _gunicorn(PROJECT_PY, "ours_app:app", "server.gunicorn_worker.ThreadWorker"),
               {"PYTHONPATH": f"{APPS}:{ROOT}"}, health="/healthz"),
    ServerSpec("ours-uwsgi", "server, uWSGI threads",
               lambda port: [str(PROJECT_VENV / "bin" / "uwsgi"), "--http-socket",
                             f"127.0.0.1:{port}", "--threads", "100", "--master",
                             "--die-on-term", "--virtualenv", str(PROJECT_VENV),
                             "--module", "ours_app:app", "--disable-logging"],
               {"PYTHONPATH": f"{APPS}:{ROOT}"}, health="/healthz"),
    # the product's way to run waitress (docs/servers/waitress.md): embedded,
    # with server.waitress_server's probe answers and handshake lane
    ServerSpec("ours-waitress", "server, waitress",
               lambda port: [str(PROJECT_PY), "-m", "server", "run", "--server", "waitress",
                             "--threads", "100", "--host", "127.0.0.1", "--port", str(port),
                             "ours_app:app"],
               {"PYTHONPATH": f"{APPS}:{ROOT}"}, health="/healthz"),
    # plain waitress-serve, which cannot use our server class (not in the default set)
    ServerSpec("ours-waitress-serve", "server, waitress-serve",
               lambda port: [str(PROJECT_PY), "-m", "waitress", "--asyncore-use-poll", "--threads=100",
                             "--connection-limit=1000", f"--listen=127.0.0.1:{port}",
                             "ours_app:app"],
               {"PYTHONPATH": f"{APPS}:{ROOT}"}, health="/healthz", extra=True),
    ServerSpec("fsio-eventlet", "Flask-SocketIO, eventlet",
               lambda port: [str(PEERS_PY), "peer_app.py", str(port)],
               {"PYTHONPATH": str(APPS), "BENCH_ASYNC_MODE": "eventlet"}),
    ServerSpec("fsio-gevent", "Flask-SocketIO, gevent",
               lambda port: [str(PEERS_PY), "peer_app.py", str(port)],
               {"PYTHONPATH": str(APPS), "BENCH_ASYNC_MODE": "gevent"}),
    ServerSpec("fsio-gunicorn", "Flask-SocketIO, gunicorn gthread",
               _gunicorn(PEERS_PY, "peer_app:app"),
               {"PYTHONPATH": str(APPS), "BENCH_ASYNC_MODE": "threading"}),
    ServerSpec("node", "Node socket.io 4",
               lambda port: ["node", "server.js", str(port)], {}, NODE_DIR),
]}


def pinned(core: str, nice: int) -> list[str]:
    """The command prefix that runs a process on ``core`` at priority ``nice``."""
    return (["nice", "-n", str(nice)] if nice else []) + ["taskset", "-c", core]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(int(entry))
    return kids


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(_children(p))
    return tree


class RunningServer:
    """One server subprocess pinned to SERVER_CORE; ``pids`` is its process tree."""

    def __init__(self, spec: ServerSpec, cpu_iters: dict, log_path: Path, nice: int = 0) -> None:
        self.spec = spec
        self.nice = nice
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **spec.env, "BENCH_CPU_ITERS": str(cpu_iters["python"]),
               "BENCH_CPU_ITERS_JS": str(cpu_iters["node"]), "PYTHONUNBUFFERED": "1"}
        env.pop("VIRTUAL_ENV", None)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([*pinned(SERVER_CORE, nice), *spec.argv(self.port)],
                                     cwd=spec.cwd, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        self.pids: list[int] = [self.proc.pid]

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until an Engine.IO handshake answers; then record the process tree."""
        deadline = time.monotonic() + timeout
        url = f"{self.url}/socket.io/?EIO=4&transport=polling"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.spec.name} exited with {self.proc.returncode}; "
                                   f"log: {self.log_path}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.read(1) == b"0":
                        time.sleep(0.3)  # let gunicorn/uWSGI finish forking
                        self.pids = process_tree(self.proc.pid)
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.spec.name} not ready after {timeout}s; log: {self.log_path}")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the server's own PID, wait, then SIGKILL its tree by PID."""
        tree = process_tree(self.proc.pid) if self.proc.poll() is None else []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        tree = tree or [self.proc.pid]
        for pid in tree[1:]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            print(f"bench: {self.spec.name} (pid {self.proc.pid}) did not exit after SIGKILL",
                  flush=True)
        self._log.close()
