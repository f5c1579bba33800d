"""Start uWSGI or waitress as a subprocess on a free loopback port; stop it by PID.

Each server runs in its own session, so a server that ignores SIGTERM is
killed with its whole process group (uWSGI's master, workers, router), by
that group's id, never by name.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: kind -> what serves: uWSGI's three ways of taking HTTP, and waitress.
KINDS = ("uwsgi-http-socket", "uwsgi-router", "uwsgi-http11-socket", "waitress",
         "uwsgi-router-without-websockets")  # the last one: a misconfiguration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def uwsgi_binary() -> str:
    """The uwsgi built into this venv (pip install uwsgi)."""
    found = shutil.which("uwsgi", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("uwsgi is not installed in this venv: pip install 'uwsgi>=2.0.28'")
    return found


class LiveServer:
    """A server subprocess serving ``module`` (``pkg.mod:app``); ``log()`` for failures."""

    def __init__(self, kind: str, module: str, *, threads: int = 2,
                 driver: str | None = None, extra: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        listen = f"127.0.0.1:{self.port}"
        if kind.startswith("uwsgi"):
            how = {"uwsgi-http-socket": ["--http-socket", listen],
                   "uwsgi-http11-socket": ["--http11-socket", listen],
                   "uwsgi-router": ["--http", listen, "--http-websockets"],
                   "uwsgi-router-without-websockets": ["--http", listen]}.get(kind)
            if how is None:
                raise ValueError(f"unknown server kind {kind!r}; known: {', '.join(KINDS)}")
            argv = [uwsgi_binary(), "--master", "--processes", "1",
                    "--threads", str(threads), "--die-on-term", "--need-app",
                    "--worker-reload-mercy", "5", "--reload-mercy", "5",
                    "--pythonpath", str(ROOT), "--module", module, *how, *extra]
        elif kind == "waitress":
            argv = [sys.executable, "-m", "waitress", f"--listen={listen}",
                    f"--threads={threads}", *extra, module]
        else:
            raise ValueError(f"unknown server kind {kind!r}; known: {', '.join(KINDS)}")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
               # uWSGI finds the venv's packages through VIRTUAL_ENV
               "VIRTUAL_ENV": sys.prefix}
        if driver is not None:
            env["DRIVER_UNDER_TEST"] = driver
        self._logfile = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env,
                                     stdout=self._logfile, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = 30.0) -> LiveServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.get("/ping", timeout=1) == b"pong":
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.kind} not ready after {timeout}s:\n{self.log()}")

    def get(self, path: str, timeout: float = 10.0) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            return r.read()

    def log(self) -> str:
        self._logfile.seek(0)
        return self._logfile.read().decode(errors="replace")[-20000:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Signal the server by its PID and wait; kill its process group if it hangs.

        Returns the exit status, or None when it had to be killed.
        """
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_group()
                return None
        self._kill_group()  # a worker or router the master left behind
        return self.proc.returncode

    def _kill_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group we started (session leader)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait(5)

    def close(self) -> None:
        self.stop()
        self._logfile.close()
