"""Threads and memory per open WebSocket in a gunicorn gthread worker.

    python tests/handoff_support/measure.py [CONNECTIONS]

Opens CONNECTIONS WebSockets to tests/handoff_support/app.py, each one
message each way, and reads the worker's /proc/PID/status before and after.
Modes: the hand-off (--threads 2) with a plain client, with a client that
negotiates permessage-deflate (zlib state kept per connection, then with
``deflate_context_takeover=False``), and python-engineio's own
thread-holding WebSocket (--threads CONNECTIONS+10, or it would hang at the
third connection).  Not a test: figures for the docs.  At most 1000.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time

from wsproto import ConnectionType, WSConnection
from wsproto.events import Request, TextMessage
from wsproto.extensions import PerMessageDeflate

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from tests.handoff_support.live import LiveServer

TARGET = "/engine.io/?EIO=4&transport=websocket"


def status(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {"threads": int(fields["Threads"]), "rss_kib": int(fields["VmRSS"].split()[0])}


def open_websocket(port: int, deflate: bool) -> socket.socket:
    """A client WebSocket that has received the open packet and one echo."""
    client = WSConnection(ConnectionType.CLIENT)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(client.send(Request(host="127.0.0.1", target=TARGET,
                                     extensions=[PerMessageDeflate()] if deflate else [])))
    finished = 0

    def read_message():
        nonlocal finished
        want = finished + 1
        while finished < want:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the WebSocket")
            client.receive_data(data)
            finished += sum(1 for e in client.events()
                            if isinstance(e, TextMessage) and e.message_finished)

    read_message()  # Engine.IO open packet
    sock.sendall(client.send(TextMessage(data="4hello")))
    read_message()  # the echo
    return sock


def measure(connections: int, mode: str) -> dict:
    env = {"baseline": {"HANDOFF_BASELINE": "1"},
           "no-takeover": {"HANDOFF_NO_CONTEXT_TAKEOVER": "1"}}.get(mode, {})
    for name in ("HANDOFF_BASELINE", "HANDOFF_NO_CONTEXT_TAKEOVER"):
        os.environ.pop(name, None)
    os.environ.update(env)
    deflate = mode in ("deflate", "no-takeover")
    server = LiveServer("gunicorn", threads=connections + 10 if mode == "baseline" else 2)
    sockets = []
    try:
        server.wait_ready()
        pid = json.loads(server.get("/stats"))["pid"]
        for _ in range(3):  # warm up the code paths (imports, first threads)
            open_websocket(server.port, deflate).close()
        time.sleep(0.5)
        before = status(pid)
        for _ in range(connections):
            sockets.append(open_websocket(server.port, deflate))
        time.sleep(1.0)  # let per-connection threads settle
        after = status(pid)
        ok = server.get("/ping", timeout=10) == b"pong"
    finally:
        for sock in sockets:
            sock.close()
        server.close()
    n = len(sockets)
    return {"mode": mode, "connections": n, "before": before, "after": after, "http_ok": ok,
            "threads_per_ws": round((after["threads"] - before["threads"]) / n, 2),
            "rss_kib_per_ws": round((after["rss_kib"] - before["rss_kib"]) / n, 1)}


if __name__ == "__main__":
    count = min(int(sys.argv[1]) if len(sys.argv) > 1 else 200, 1000)
    for mode in ("hand-off", "deflate", "no-takeover", "baseline"):
        print(json.dumps(measure(count, mode)))
