"""WebSocket hand-off on real servers: gunicorn gthread and Werkzeug as subprocesses.

The app is tests/handoff_support/app.py: plain python-engineio with the
hand-off installed per instance, echoing every message.
"""
from __future__ import annotations

import json
import signal
import socket
import struct
import threading
import time

import engineio
import pytest
import websocket  # websocket-client
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage
from wsproto.extensions import PerMessageDeflate

from server.tls_client import SerialTLSWebSocket
from tests.handoff_support.live import LiveServer, self_signed

pytestmark = pytest.mark.live

WAIT = 15.0  # generous bound for any single event; never a speed assertion


@pytest.fixture(scope="module", params=["gunicorn", "werkzeug"])
def live(request):
    server = LiveServer(request.param, threads=2)
    try:
        server.wait_ready()
        yield server
    finally:
        server.close()


class EchoClient:
    """engineio.Client that records messages and its disconnect."""

    def __init__(self, url: str, transports: list[str], **client_options) -> None:
        self.client = engineio.Client(handle_sigint=False, **client_options)
        self.messages: list[object] = []
        self.got_message = threading.Event()
        self.disconnected = threading.Event()
        self.client.on("message", self._on_message)
        self.client.on("disconnect", self._on_disconnect)
        self.client.connect(url, transports=transports)

    def _on_message(self, data):
        self.messages.append(data)
        self.got_message.set()

    def _on_disconnect(self, *args):
        self.disconnected.set()

    def echo(self, data):
        self.got_message.clear()
        self.messages.clear()
        self.client.send(data)
        assert self.got_message.wait(WAIT), f"no echo of a {type(data).__name__} within {WAIT}s"
        return self.messages[0]

    def close(self):
        if self.client.state == "connected":
            self.client.disconnect()


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


@pytest.mark.parametrize("transports", [["websocket"], ["polling", "websocket"]],
                         ids=["websocket-only", "polling-upgrade"])
def test_echo_round_trip(live, transports):
    client = EchoClient(live.url, transports)
    try:
        assert client.client.transport() == "websocket"
        assert client.echo("héllo") == "héllo"
        assert client.echo(b"\x00\x01binary") == b"\x00\x01binary"
    finally:
        client.close()


def test_one_megabyte_binary_message_is_byte_exact(live):
    payload = bytes(range(256)) * 4096  # 1 MiB
    client = EchoClient(live.url, ["websocket"])
    try:
        echoed = client.echo(payload)
        assert isinstance(echoed, bytes) and len(echoed) == len(payload), \
            f"expected {len(payload)} bytes back, got {type(echoed).__name__} of {len(echoed)}"
        assert echoed == payload
    finally:
        client.close()


def test_plain_http_answers_while_websockets_outnumber_threads(live):
    # the server runs 2 request threads (gunicorn --threads 2); without the
    # hand-off the third WebSocket and every later request would hang
    clients = []
    try:
        for _ in range(10):
            clients.append(EchoClient(live.url, ["websocket"]))
        wait_for(lambda: stats(live)["websockets"] >= 10, "10 open WebSockets on the server")
        answered = threading.Event()
        body = []

        def fetch():
            body.append(live.get("/ping", timeout=WAIT))
            answered.set()

        threading.Thread(target=fetch, daemon=True).start()
        assert answered.wait(WAIT), f"GET /ping unanswered with 10 WebSockets open:\n{live.log()}"
        assert body == [b"pong"]
        for i, client in enumerate(clients):
            assert client.echo(f"client {i}") == f"client {i}"
    finally:
        for client in clients:
            client.close()
    wait_for(lambda: stats(live)["websockets"] == 0, "every WebSocket to be released")


def test_server_side_close_reaches_client(live):
    client = EchoClient(live.url, ["websocket"])
    try:
        assert live.get(f"/kick?{client.client.sid}") == b"kicked"
        assert client.disconnected.wait(WAIT), "client saw no disconnect after the server closed it"
    finally:
        client.close()


def _raw_websocket(server: LiveServer) -> websocket.WebSocket:
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{server.port}/engine.io/?EIO=4&transport=websocket", timeout=WAIT)
    opening = ws.recv()
    assert opening.startswith("0{"), f"expected the Engine.IO open packet, got {opening!r}"
    return ws


def _close_code(ws: websocket.WebSocket) -> int:
    """Read frames until the Close frame; return its status code."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        opcode, frame = ws.recv_data_frame(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return struct.unpack("!H", frame.data[:2])[0]
    raise AssertionError("no Close frame")


def test_message_over_max_size_is_closed_with_1009(live):
    ws = _raw_websocket(live)
    try:
        ws.send_binary(b"x" * 2_000_001)  # the app's max_http_buffer_size is 2_000_000
        code = _close_code(ws)
        assert code == 1009, f"expected close code 1009 (message too big), got {code}"
    finally:
        ws.close()


def test_bad_handshake_gets_400(live):
    with socket.create_connection(("127.0.0.1", live.port), timeout=WAIT) as s:
        s.sendall(b"GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                  b"Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")  # no Sec-WebSocket-Key
        status = s.makefile("rb").readline()
    assert status.split()[1:2] == [b"400"], f"expected HTTP 400, got {status!r}"


def test_permessage_deflate_is_negotiated_and_works(live):
    client = WSConnection(ConnectionType.CLIENT)
    with socket.create_connection(("127.0.0.1", live.port), timeout=WAIT) as s:
        s.sendall(client.send(Request(host="127.0.0.1",
                                      target="/engine.io/?EIO=4&transport=websocket",
                                      extensions=[PerMessageDeflate()])))
        events = []

        def next_event():
            while not events:
                data = s.recv(65536)
                assert data, "server closed the connection"
                client.receive_data(data)
                events.extend(client.events())
            return events.pop(0)

        def next_text():
            parts = []
            while True:
                event = next_event()
                assert isinstance(event, TextMessage), f"expected text, got {event!r:.100}"
                parts.append(event.data)
                if event.message_finished:
                    return "".join(parts)

        accepted = next_event()
        assert isinstance(accepted, AcceptConnection), f"expected a 101, got {accepted!r}"
        assert [type(e) for e in accepted.extensions] == [PerMessageDeflate], \
            f"permessage-deflate not negotiated: {accepted.extensions!r}"
        assert next_text().startswith("0{")  # Engine.IO open packet
        text = "4" + "compress me " * 1000  # Engine.IO message packet
        s.sendall(client.send(TextMessage(data=text)))
        echoed = next_text()
        assert echoed == text, f"expected the echo of {len(text)} chars, got {echoed!r:.100}"


def test_sigterm_closes_every_websocket_and_gunicorn_exits():
    server = LiveServer("gunicorn", threads=2)
    sockets = []
    try:
        server.wait_ready()
        sockets = [_raw_websocket(server) for _ in range(5)]
        wait_for(lambda: stats(server)["websockets"] == 5, "5 open WebSockets")
        server.proc.send_signal(signal.SIGTERM)
        codes = [_close_code(ws) for ws in sockets]
        assert codes == [1001] * 5, f"expected every client to get Close 1001, got {codes}"
        returncode = server.stop(timeout=WAIT)
        assert returncode == 0, f"gunicorn exit status {returncode}:\n{server.log()}"
    finally:
        for ws in sockets:
            ws.close()
        server.close()


@pytest.fixture(params=["sync-worker", "tls"])
def fallback_server(request, tmp_path):
    if request.param == "sync-worker":
        server = LiveServer("gunicorn", worker="sync", threads=1)  # more threads means gthread
        reason = "sync worker"
    else:
        server = LiveServer("gunicorn", threads=2, tls=self_signed(tmp_path))
        reason = "TLS"
    try:
        server.wait_ready()
        yield server, reason
    finally:
        server.close()


def test_without_hand_off_websockets_are_served_in_the_request_thread(fallback_server):
    server, reason = fallback_server
    # the TLS-safe WebSocket (docs/tls.md): websocket-client's own class drops a
    # wss:// connection now and then, on the client's side
    client = EchoClient(server.url, ["websocket"], ssl_verify=False,
                        websocket_extra_options={"class_": SerialTLSWebSocket})
    try:
        assert client.echo("held") == "held"
        assert client.echo(b"\x00held") == b"\x00held"
    finally:
        client.close()
    # the request thread comes back when the WebSocket ends
    wait_for(lambda: stats(server)["websockets"] == 0, "the WebSocket to be released")
    assert server.get("/ping") == b"pong"
    log = server.log()
    assert "WebSocket hand-off unavailable on gunicorn" in log and reason in log, \
        f"expected one warning naming {reason!r}; server log:\n{log}"
