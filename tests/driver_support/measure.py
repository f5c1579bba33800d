"""Threads and memory per open WebSocket on uWSGI and waitress (not a test).

    [ENGINE_UNDER_TEST=project] python -m tests.driver_support.measure [COUNT] [KIND ...]

Starts each server (2 request threads) with engineio_app.py (plain
python-engineio, or with ENGINE_UNDER_TEST=project this project's
EngineServer), opens COUNT Engine.IO WebSockets (bounded: at most 1000),
and prints the server's thread count and RSS before and after, per
connection.
"""
from __future__ import annotations

import json
import sys
import time

import websocket

from tests.driver_support.servers import LiveServer

EIO_APP = "tests.driver_support.engineio_app:app"


def measure(kind: str, count: int) -> str:
    server = LiveServer(kind, EIO_APP)
    sockets = []
    try:
        server.wait_ready()
        before = json.loads(server.get("/stats"))
        for _ in range(count):
            ws = websocket.create_connection(
                f"ws://127.0.0.1:{server.port}/engine.io/?EIO=4&transport=websocket",
                timeout=15)
            assert ws.recv().startswith("0{")
            sockets.append(ws)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            after = json.loads(server.get("/stats"))
            if after["websockets"] >= count:
                break
            time.sleep(0.1)
        threads = after["threads"] - before["threads"]
        rss = after["rss_kib"] - before["rss_kib"]
        return (f"{kind:22} {after['websockets']:4} WebSockets: threads {before['threads']} -> "
                f"{after['threads']} ({threads / count:.2f} per WebSocket), RSS "
                f"{before['rss_kib'] / 1024:.1f} -> {after['rss_kib'] / 1024:.1f} MiB "
                f"({rss / count:.0f} KiB per WebSocket)")
    finally:
        for ws in sockets:
            ws.close()
        server.close()


if __name__ == "__main__":
    count = min(int(sys.argv[1]) if sys.argv[1:] else 200, 1000)
    for kind in sys.argv[2:] or ["uwsgi-http-socket", "uwsgi-router", "waitress"]:
        print(measure(kind, count), flush=True)
