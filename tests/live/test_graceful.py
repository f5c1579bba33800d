"""SIGTERM with 50 connected clients: every one sees a clean disconnect (one
the official client reconnects after) and the server exits within its
graceful timeout."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from .harness import BIN, JS_DIR, SERVERS, ServerKind, running, server_env

pytestmark = pytest.mark.live

GRACEFUL = 5  # SERVER_GRACEFUL_TIMEOUT the harness gives gunicorn and uWSGI


def _run_waitress(port: int, app: str) -> tuple[list[str], dict[str, str]]:
    # waitress-serve has no shutdown hook; python -m server run --server waitress has
    return ([sys.executable, "-m", "server", "run", "--server", "waitress", "--host",
             "127.0.0.1", "--port", str(port), app],
            server_env(SERVER_GRACEFUL_TIMEOUT=str(GRACEFUL)))


KINDS = {"gunicorn-gthread": SERVERS["gunicorn-gthread"],
         "uwsgi-http-socket": SERVERS["uwsgi-http-socket"],
         "waitress-run": ServerKind("waitress-run", _run_waitress)}


def _clients(url: str, count: int, transports: str) -> subprocess.Popen:
    return subprocess.Popen(["node", str(JS_DIR / "capacity.js"), url, str(count), "120000",
                             transports],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_sigterm_with_50_clients(name, tmp_path):
    if shutil.which("node") is None or not (JS_DIR / "node_modules").exists():
        pytest.skip("node and tests/js/node_modules are needed (scripts/test installs them)")
    if name.startswith("uwsgi") and not (BIN / "uwsgi").exists():
        pytest.skip("uWSGI is not installed (pip install uwsgi)")
    with running(KINDS[name], tmp_path) as server:
        groups = [_clients(server.url, 25, "websocket"), _clients(server.url, 25, "polling")]
        try:
            for group in groups:
                up = json.loads(group.stdout.readline() or "{}")
                assert up.get("connected") == 25 and up.get("acked") == 25, up
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            code = server.proc.wait(GRACEFUL + 5)  # bounded; the figure is checked below
            elapsed = time.monotonic() - started
            outcomes = [json.loads(group.stdout.readline() or "{}") for group in groups]
        finally:
            for group in groups:
                if group.poll() is None:
                    group.stdin.close()
                    group.wait(30)
    print(f"{name}: exit {code} {elapsed:.2f} s after SIGTERM; clients: {outcomes}")
    assert code == 0, f"{name} exited with {code}"
    assert elapsed <= GRACEFUL, f"{name} took {elapsed:.1f} s, graceful timeout {GRACEFUL} s"
    # "transport close": the server closed the transport (close frame 1001, or
    # an Engine.IO close answering the pending long-poll), and the official
    # client reconnects; an "io server disconnect" would stop it doing so.
    assert outcomes[0] == {"disconnected": 25, "reasons": {"transport close": 25}}, (
        f"websocket clients after SIGTERM: {outcomes[0]}")
    # Polling clients: "transport close" when the server's Engine.IO close
    # answers their pending long-poll; "transport error" for a client caught
    # between two polls when the listener closes (gunicorn, waitress: a few in
    # 25) or whose poll is cut (uWSGI's die-on-term).  The official client
    # reconnects after either; never "io server disconnect", which it would not.
    assert outcomes[1]["disconnected"] == 25, f"polling clients: {outcomes[1]}"
    assert set(outcomes[1]["reasons"]) <= {"transport close", "transport error"}, (
        f"polling clients after SIGTERM: {outcomes[1]}")
