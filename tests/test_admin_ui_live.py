"""The Socket.IO Admin UI over a real server: traffic of reactor-served WebSockets and
polling POSTs is counted, and pings re-announce sockets (server.admin_ui)."""
from __future__ import annotations

import collections
import queue
import time

import flask
import pytest
import socketio as sio_client

import server
from tests.livesupport import serve_in_thread

WAIT = 20


def _next(items: queue.Queue, deadline: float, what: str):
    left = deadline - time.monotonic()
    assert left > 0, f"waited {WAIT}s for {what}"
    try:
        return items.get(timeout=left)
    except queue.Empty:
        pytest.fail(f"waited {WAIT}s for {what}")


@pytest.mark.parametrize("transport,websocket_io", [
    ("websocket", "events"), ("websocket", "threads"), ("polling", "events")])
def test_admin_ui_counts_traffic_and_reannounces_sockets_at_pings(transport, websocket_io):
    # several servers instrumented in one process (each parameter here): python-socketio
    # patches engineio's Socket class each time, which must not reach our sessions
    app = flask.Flask(__name__)
    socketio = server.SocketIO(app, ping_interval=1, websocket_io=websocket_io)

    @socketio.on("echo")
    def echo(data):
        return data

    socketio.instrument(auth=False, server_stats_interval=1)
    with serve_in_thread(app) as url:
        admin = sio_client.Client(reconnection=False)
        stats: queue.Queue = queue.Queue()
        announced: queue.Queue = queue.Queue()
        admin.on("server_stats", stats.put, namespace="/admin")
        admin.on("socket_connected", lambda sock, when: announced.put(sock["id"]),
                 namespace="/admin")
        admin.connect(url, namespaces=["/admin"], transports=["websocket"], wait_timeout=WAIT)
        client = sio_client.Client(reconnection=False)
        try:
            client.connect(url, transports=[transport], wait_timeout=WAIT)
            for n in range(5):
                assert client.call("echo", n, timeout=WAIT) == n
            # announced at connect, then again at a ping (every second here)
            sid, seen = client.get_sid("/"), 0
            deadline = time.monotonic() + WAIT
            while seen < 2:
                seen += _next(announced, deadline, f"two announcements of {sid}") == sid
            # five acked events in and their five acks out, at least
            totals: collections.Counter = collections.Counter()
            deadline = time.monotonic() + WAIT
            while not (totals["packetsIn"] >= 5 and totals["packetsOut"] >= 5
                       and totals["bytesIn"] > 0 and totals["bytesOut"] > 0):
                report = _next(stats, deadline, f"the {transport} client's packets in "
                               f"server_stats (so far {dict(totals)})")
                for event in report["aggregatedEvents"]:
                    totals[event["type"]] += event["count"]
        finally:
            client.disconnect()
            admin.disconnect()
