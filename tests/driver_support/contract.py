"""What every hand-off driver must do on its live server: the shared tests.

tests/test_driver_uwsgi.py and tests/test_driver_waitress.py import these
test functions; each file provides the fixtures they use:

``echo_server``  a LiveServer running echo_app.py (the driver alone, no core),
                 with 2 request threads;
``eio_server``   a LiveServer running engineio_app.py (python-engineio with
                 the hand-off core), with 2 request threads;
``server_kind``  the LiveServer kind, for tests that start their own server.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import socket
import threading
import time

import engineio
import websocket  # websocket-client
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, TextMessage

from tests.driver_support.servers import LiveServer

WAIT = 15.0  # generous bound for any single event; never a speed assertion
ECHO_APP = "tests.driver_support.echo_app:app"
EIO_APP = "tests.driver_support.engineio_app:app"


def stats(server: LiveServer) -> dict:
    return json.loads(server.get("/stats"))


def wait_for(predicate, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def open_echo(server: LiveServer) -> websocket.WebSocket:
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/echo", timeout=WAIT)
    headers = ws.getheaders()
    assert headers.get("x-handoff") == "echo", \
        f"the 101 is not the one our thread writes: {headers!r}\n{server.log()}"
    return ws


def get_in_thread(server: LiveServer, path: str) -> bytes:
    """GET ``path``; fail (instead of hanging the suite) when it is not answered."""
    answered = threading.Event()
    body: list[bytes] = []

    def fetch():
        body.append(server.get(path, timeout=WAIT))
        answered.set()

    threading.Thread(target=fetch, daemon=True).start()
    assert answered.wait(WAIT), f"GET {path} unanswered within {WAIT}s:\n{server.log()}"
    return body[0]


# -- the driver alone (echo_app) --------------------------------------------

def test_connection_is_ours_alone(echo_server):
    ws = open_echo(echo_server)
    try:
        ws.send("héllo")
        assert ws.recv() == "héllo"
        ws.send_binary(b"\x00\x01\xff")
        assert ws.recv() == b"\x00\x01\xff"
        ws.send("fds?")
        held = ws.recv()
        assert held == "1", (f"expected the connection held by 1 descriptor in the server "
                             f"(ours), got {held}: the WSGI server still holds it")
    finally:
        ws.close()


def test_server_writes_nothing_on_the_connection(echo_server):
    """Every byte the client receives is ours: the 101, then WebSocket frames.

    The handshake says ``Connection: keep-alive, Upgrade``, as Firefox does.
    """
    client = Connection(ConnectionType.CLIENT)
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", echo_server.port), timeout=WAIT) as s:
        s.sendall(f"GET /echo HTTP/1.1\r\nHost: 127.0.0.1:{echo_server.port}\r\n"
                  f"Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = s.recv(65536)
            assert chunk, f"connection closed during the handshake after {received!r}"
            received += chunk
        head, _, rest = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ") and b"\r\nX-Handoff: echo" in head, \
            f"expected our own 101 first, got {head!r}"
        for text in ("one", "fds?"):
            s.sendall(client.send(TextMessage(data=text)))
        s.sendall(client.send(CloseConnection(code=1000)))
        while True:  # until the server closes: whatever else was written arrives too
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
    client.receive_data(rest)
    events = list(client.events())  # wsproto raises on any byte that is not a frame
    assert [type(e) for e in events] == [TextMessage, TextMessage, CloseConnection], \
        f"expected two echoes and a Close, got {events!r}"
    assert [events[0].data, events[1].data] == ["one", "1"], f"got {events!r}"


def test_request_threads_are_freed(echo_server):
    # the server has 2 request threads; a WebSocket that kept one would
    # starve everything from the third on
    sockets = []
    try:
        for _ in range(10):
            sockets.append(open_echo(echo_server))
        assert get_in_thread(echo_server, "/ping") == b"pong"
        for i, ws in enumerate(sockets):
            ws.send(f"socket {i}")
            assert ws.recv() == f"socket {i}"
        assert stats(echo_server)["open"] >= 10
    finally:
        for ws in sockets:
            ws.close()
    wait_for(lambda: stats(echo_server)["open"] == 0, "every WebSocket to end")


def test_sigterm_exits_in_bounded_time(server_kind):
    server = LiveServer(server_kind, ECHO_APP, driver=DRIVER_OF[server_kind])
    sockets = []
    try:
        server.wait_ready()
        sockets = [open_echo(server) for _ in range(3)]
        started = time.monotonic()
        status = server.stop(signal.SIGTERM, timeout=WAIT)
        assert status is not None, \
            f"{server_kind} still running {WAIT}s after SIGTERM with 3 WebSockets open:\n{server.log()}"
        for ws in sockets:  # our threads died with the process: the clients see the end
            try:
                ws.recv()
                raise AssertionError("a WebSocket still answered after the server exited")
            except (websocket.WebSocketConnectionClosedException, ConnectionError):
                pass
        assert time.monotonic() - started < WAIT + 5
    finally:
        for ws in sockets:
            ws.close()
        server.close()


DRIVER_OF = {"uwsgi-http-socket": "uwsgi", "uwsgi-router": "uwsgi",
             "uwsgi-http11-socket": "uwsgi", "waitress": "waitress"}


# -- through the hand-off core (python-engineio) -----------------------------

class EchoClient:
    """engineio.Client that records the messages it gets."""

    def __init__(self, url: str, transports: list[str]) -> None:
        self.client = engineio.Client(handle_sigint=False)
        self.messages: list[object] = []
        self.got_message = threading.Event()
        self.client.on("message", self._on_message)
        self.client.connect(url, transports=transports)

    def _on_message(self, data):
        self.messages.append(data)
        self.got_message.set()

    def echo(self, data):
        self.got_message.clear()
        self.messages.clear()
        self.client.send(data)
        assert self.got_message.wait(WAIT), f"no echo of a {type(data).__name__} within {WAIT}s"
        return self.messages[0]

    def close(self):
        if self.client.state == "connected":
            self.client.disconnect()


def _transports_case(eio_server, transports):
    client = EchoClient(eio_server.url, transports)
    try:
        assert client.client.transport() == "websocket", \
            f"expected the websocket transport, got {client.client.transport()}"
        assert client.echo("héllo") == "héllo"
        assert client.echo(b"\x00\x01binary") == b"\x00\x01binary"
        assert stats(eio_server)["websockets"] == 1, "the core does not list the WebSocket"
    finally:
        client.close()


def test_engineio_websocket_only(eio_server):
    _transports_case(eio_server, ["websocket"])


def test_engineio_polling_then_upgrade(eio_server):
    _transports_case(eio_server, ["polling", "websocket"])


def test_engineio_one_megabyte_binary_is_byte_exact(eio_server):
    payload = os.urandom(1 << 20)
    client = EchoClient(eio_server.url, ["websocket"])
    try:
        echoed = client.echo(payload)
        assert isinstance(echoed, bytes) and len(echoed) == len(payload), \
            f"expected {len(payload)} bytes back, got {type(echoed).__name__} of {len(echoed)}"
        assert echoed == payload, "the 1 MiB message came back altered"
    finally:
        client.close()


def test_engineio_threads_are_freed(eio_server):
    clients = []
    try:
        for _ in range(10):
            clients.append(EchoClient(eio_server.url, ["websocket"]))
        wait_for(lambda: stats(eio_server)["websockets"] >= 10, "10 open WebSockets")
        assert get_in_thread(eio_server, "/ping") == b"pong"
        for i, client in enumerate(clients):
            assert client.echo(f"client {i}") == f"client {i}"
    finally:
        for client in clients:
            client.close()
    wait_for(lambda: stats(eio_server)["websockets"] == 0, "every WebSocket to be released")
