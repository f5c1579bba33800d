"""500 WebSocket clients on 8 server threads: all connected and answering,
the health endpoint prompt, the idle server quiet.

Without hand-off each open WebSocket holds one of the 8 threads, so the 9th
client would hang, and so would /healthz.  Clients: the official JavaScript
client, 500 sockets in one Node process.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time
import urllib.request

import pytest

from .harness import BIN, JS_DIR, SERVERS, running

pytestmark = [pytest.mark.live, pytest.mark.slow]

CLIENTS = 500
THREADS = "8"


def _eight_threads(name):
    """The shipped configuration of ``name`` with 8 server threads."""
    kind = SERVERS[name]

    def command(port, app):
        argv, env = kind.command(port, app)
        env = {**env, "SERVER_THREADS": THREADS}
        if name == "waitress":
            argv = [a if a != "100" else THREADS for a in argv]  # --threads 100 -> 8
        return argv, env

    return type(kind)(kind.name, command, kind.needs)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _health_ms(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url + "/healthz", timeout=10) as resp:
        assert resp.status == 200
    return (time.perf_counter() - started) * 1000


@pytest.mark.parametrize("name", ["gunicorn-gthread", "uwsgi-http-socket", "waitress"])
def test_500_websockets_on_8_threads(name, tmp_path):
    if shutil.which("node") is None or not (JS_DIR / "node_modules").exists():
        pytest.skip("node and tests/js/node_modules are needed (scripts/test installs them)")
    if name.startswith("uwsgi") and not (BIN / "uwsgi").exists():
        pytest.skip("uWSGI is not installed (pip install uwsgi)")
    with running(_eight_threads(name), tmp_path) as server:
        with urllib.request.urlopen(server.url + "/ready", timeout=10) as resp:
            worker_pid = json.loads(resp.read())["pid"]
        client = subprocess.Popen(["node", str(JS_DIR / "capacity.js"), server.url,
                                   str(CLIENTS), "180000"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            first = json.loads(client.stdout.readline() or "{}")
            assert first.get("connected") == CLIENTS and first.get("acked") == CLIENTS, (
                f"expected {CLIENTS} connected and acked clients on {THREADS} threads, "
                f"got {first}")
            samples = [_health_ms(server.url) for _ in range(21)]
            cpu_before, wall_before = _cpu_seconds(worker_pid), time.monotonic()
            # idle: no traffic but the keep-alive pings; measure a few seconds
            deadline = wall_before + 3
            while time.monotonic() < deadline:
                _cpu_seconds(worker_pid)
                time.sleep(0.2)
            cpu_share = (_cpu_seconds(worker_pid) - cpu_before) / (time.monotonic() - wall_before)
            client.stdin.close()
            last = json.loads(client.stdout.readline() or "{}")
        finally:
            if client.poll() is None:
                client.kill()
            client.wait(30)
    median = statistics.median(samples)
    print(f"{name}: {CLIENTS} clients on {THREADS} threads; /healthz median {median:.1f} ms, "
          f"max {max(samples):.1f} ms; idle CPU {cpu_share:.1%} of a core")
    assert last.get("still_connected") == CLIENTS, f"clients dropped while held: {last}"
    # the bound: health answers under 50 ms while 500 WebSockets are open
    assert median < 50, f"/healthz median {median:.1f} ms with {CLIENTS} WebSockets open"
    # idle means the pings only: a generous bound for a shared 2-core machine
    assert cpu_share < 0.25, f"idle server used {cpu_share:.0%} of a core"
