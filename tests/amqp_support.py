"""An AMQP broker for the Kombu message-queue tests.

Uses the broker that answers on the default port (127.0.0.1:5672, guest/guest)
if there is one; otherwise starts the Debian package's rabbitmq-server (which
scripts/bootstrap installs when nothing answers there).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

from tests.livesupport import free_port


def _answers(port: int, timeout: float = 5.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"AMQP\x00\x00\x09\x01")
            return s.recv(8).startswith(b"\x01")  # connection.start frame
    except OSError:
        return False


class Broker:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.port = 5672

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self) -> None:
        # a loaded machine may be slow to answer: give the resident broker time
        if any(_answers(5672) for _ in range(3)):
            return
        exe = shutil.which("rabbitmq-server") or "/usr/lib/rabbitmq/bin/rabbitmq-server"
        if not os.path.exists(exe):
            raise RuntimeError("no AMQP broker answers on 127.0.0.1:5672 and rabbitmq-server "
                               "is not installed: scripts/bootstrap installs it")
        self.port = free_port()
        base = tempfile.mkdtemp(prefix="rabbit-test-")
        env = dict(os.environ, RABBITMQ_NODE_PORT=str(self.port),
                   RABBITMQ_NODE_IP_ADDRESS="127.0.0.1", RABBITMQ_NODENAME=f"test{self.port}@localhost",
                   RABBITMQ_MNESIA_BASE=base, RABBITMQ_LOG_BASE=base,
                   RABBITMQ_DIST_PORT=str(free_port()))
        self.proc = subprocess.Popen([exe], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if _answers(self.port, timeout=1.0):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {self.proc.returncode}")
            time.sleep(0.2)
        raise RuntimeError("rabbitmq-server did not answer within 90 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
