"""Threads and memory per open WebSocket in a gunicorn gthread worker.

    python tests/handoff_support/measure.py [CONNECTIONS]

Opens CONNECTIONS raw WebSockets (websocket-client, no client threads) to
tests/handoff_support/app.py and reads the worker's /proc/PID/status before
and after.  Runs twice: with the hand-off (--threads 2), and with
python-engineio's own thread-holding WebSocket (HANDOFF_BASELINE=1,
--threads CONNECTIONS+10, or it would hang at the third connection).
Not a test: a figure for the docs.  Bounded: CONNECTIONS <= 1000.
"""
from __future__ import annotations

import json
import os
import sys
import time

import websocket

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from tests.handoff_support.live import LiveServer


def status(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {"threads": int(fields["Threads"]), "rss_kib": int(fields["VmRSS"].split()[0])}


def measure(connections: int, baseline: bool) -> dict:
    if baseline:
        os.environ["HANDOFF_BASELINE"] = "1"
    else:
        os.environ.pop("HANDOFF_BASELINE", None)
    server = LiveServer("gunicorn", threads=connections + 10 if baseline else 2)
    sockets = []
    try:
        server.wait_ready()
        pid = json.loads(server.get("/stats"))["pid"]
        url = f"ws://127.0.0.1:{server.port}/engine.io/?EIO=4&transport=websocket"
        for _ in range(3):  # warm up the code paths (imports, first threads)
            ws = websocket.create_connection(url, timeout=10)
            ws.recv()
            ws.close()
        time.sleep(0.5)
        before = status(pid)
        for _ in range(connections):
            ws = websocket.create_connection(url, timeout=10)
            ws.recv()  # the Engine.IO open packet: the server side is running
            sockets.append(ws)
        time.sleep(1.0)  # let per-connection threads settle
        after = status(pid)
        ok = server.get("/ping", timeout=10) == b"pong"
    finally:
        for ws in sockets:
            ws.close()
        server.close()
    n = len(sockets)
    return {"mode": "engine.io thread-holding" if baseline else "hand-off",
            "connections": n, "before": before, "after": after, "http_ok": ok,
            "threads_per_ws": (after["threads"] - before["threads"]) / n,
            "rss_kib_per_ws": (after["rss_kib"] - before["rss_kib"]) / n}


if __name__ == "__main__":
    count = min(int(sys.argv[1]) if len(sys.argv) > 1 else 200, 1000)
    for baseline in (False, True):
        print(json.dumps(measure(count, baseline)))
