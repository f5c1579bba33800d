"""Start a real server as a subprocess on a free loopback port; stop it by PID."""
from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A server subprocess; ``url`` once ready, ``log()`` for failure messages."""

    def __init__(self, kind: str, threads: int = 2, worker: str = "gthread",
                 tls: tuple[str, str] | None = None) -> None:
        """``tls``: (certfile, keyfile) for gunicorn to terminate TLS itself."""
        self.kind = kind
        self.port = free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._tls = tls
        if kind == "gunicorn":
            argv = [sys.executable, "-m", "gunicorn", "-k", worker,
                    "--threads", str(threads), "-w", "1",
                    "-b", f"127.0.0.1:{self.port}", "-c", str(HERE / "gunicorn_conf.py"),
                    "--graceful-timeout", "10", "--no-control-socket", "app:app"]
            if tls:
                argv += ["--certfile", tls[0], "--keyfile", tls[1]]
        elif kind == "werkzeug":
            argv = [sys.executable, str(HERE / "app.py"), "werkzeug", str(self.port)]
        else:
            raise ValueError(f"unknown server kind {kind!r}")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]),
               "PYTHONUNBUFFERED": "1"}
        self._logfile = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(argv, cwd=HERE, env=env, stdout=self._logfile,
                                     stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.get("/ping", timeout=1) == b"pong":
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.kind} not ready after {timeout}s:\n{self.log()}")

    def get(self, path: str, timeout: float = 10.0) -> bytes:
        context = None
        if self._tls:
            context = ssl.create_default_context(cafile=self._tls[0])
        with urllib.request.urlopen(self.url + path, timeout=timeout, context=context) as r:
            return r.read()

    def log(self) -> str:
        self._logfile.seek(0)
        return self._logfile.read().decode(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        """Signal the server by its PID; wait for it; kill it if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                return None
        return self.proc.returncode

    def close(self) -> None:
        self.stop()
        self._logfile.close()


def self_signed(directory: Path) -> tuple[str, str]:
    """(certfile, keyfile) for 127.0.0.1, made with the openssl command."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-days", "1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return str(cert), str(key)
