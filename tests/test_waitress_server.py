"""server.waitress_server without its loop running: what one turn of accepting does.

The probe answers and the handshake lane are tested live
(tests/live/test_waitress_server.py).
"""
import contextlib
import socket

from waitress.adjustments import Adjustments

from server.front import ACCEPT_BATCH
from server.waitress_server import FrontServer


def _app(environ, start_response):
    start_response("200 OK", [("Content-Length", "0")])
    return [b""]


@contextlib.contextmanager
def _server(**adjustments):
    adj = Adjustments(host="127.0.0.1", port=0, threads=1, asyncore_use_poll=True,
                      **adjustments)
    server = FrontServer(_app, adj=adj, sockinfo=adj.listen[0])
    clients = []
    try:
        yield server, clients
    finally:
        for client in clients:
            client.close()
        for channel in list(server.active_channels.values()):
            channel.close()
        server.close()
        server.task_dispatcher.shutdown()


def _connect(server, clients, n):
    for _ in range(n):  # each connection waits in the kernel's accept queue
        clients.append(socket.create_connection(("127.0.0.1", server.effective_port), timeout=5))


def test_one_turn_accepts_every_waiting_connection():
    with _server() as (server, clients):
        _connect(server, clients, 10)
        server.handle_accept()
        assert len(server.active_channels) == 10, (
            f"one turn should accept all 10 waiting connections (waitress alone: 1), "
            f"got {len(server.active_channels)}")
        server.handle_accept()  # nothing waiting: returns at once
        assert len(server.active_channels) == 10


def test_one_turn_stops_at_the_batch_and_at_the_connection_limit():
    with _server() as (server, clients):
        _connect(server, clients, ACCEPT_BATCH + 3)
        server.handle_accept()
        assert len(server.active_channels) == ACCEPT_BATCH
        server.handle_accept()
        assert len(server.active_channels) == ACCEPT_BATCH + 3
    with _server(connection_limit=6) as (server, clients):
        _connect(server, clients, 10)
        server.handle_accept()
        # the loop's map also holds the listening socket and waitress's trigger
        assert len(server._map) == 6, (
            f"accepting should stop at connection_limit=6 entries in the loop's map, "
            f"got {len(server._map)}")
