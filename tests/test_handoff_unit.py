"""WebSocket hand-off over a socketpair: no WSGI server, real sockets.

The environ imitates the server named by its socket key (Werkzeug's or
gunicorn's); the other end of the socketpair is a wsproto client.
"""
from __future__ import annotations

import functools
import socket
import ssl
import threading
import types

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

from server.websocket import (
    REFUSAL_KEY,
    HandoffWebSocket,
    WebSocketRegistry,
    find_driver,
    load_driver,
)
from server.websocket.drivers import GATE_KEY

WAIT = 10.0


class Peer:
    """The client end: a wsproto client on one end of a socketpair."""

    def __init__(self, sock: socket.socket, extensions=()) -> None:
        self.sock = sock
        self.sock.settimeout(WAIT)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.request = self.ws.send(Request(host="test", target="/engine.io/",
                                            extensions=list(extensions)))
        self.pending: list[object] = []

    def environ_headers(self) -> dict[str, str]:
        """The client's handshake headers as a WSGI server puts them in environ."""
        lines = self.request.decode("latin-1").split("\r\n")[1:]
        headers = {}
        for line in filter(None, lines):
            name, value = line.split(":", 1)
            headers["HTTP_" + name.strip().upper().replace("-", "_")] = value.strip()
        return headers

    def next_event(self):
        while not self.pending:
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("connection closed before the expected event")
            self.ws.receive_data(data)
            self.pending.extend(self.ws.events())
        return self.pending.pop(0)

    def next_message(self) -> str | bytes:
        """The next whole message (wsproto hands out frames in pieces)."""
        parts = []
        while True:
            event = self.next_event()
            assert isinstance(event, (TextMessage, BytesMessage)), f"expected a message, got {event!r}"
            parts.append(event.data)
            if event.message_finished:
                return "".join(parts) if isinstance(event, TextMessage) else b"".join(parts)

    def send(self, event) -> None:
        self.sock.sendall(self.ws.send(event))


def make_environ(peer: Peer, key: str, sock: socket.socket, **extra) -> dict:
    return {"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": "/engine.io/",
            key: sock, "wsgi.multithread": True, **peer.environ_headers(), **extra}


class StartResponse:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list]] = []

    def __call__(self, status, headers, exc_info=None):
        self.calls.append((status, headers))


@pytest.fixture
def pair():
    server_end, client_end = socket.socketpair()
    yield server_end, Peer(client_end)
    server_end.close()
    client_end.close()


def fake_engineio_server(max_size=1_000_000):
    return types.SimpleNamespace(max_http_buffer_size=max_size, websockets=WebSocketRegistry())


def accept(peer: Peer, handler, server, key="werkzeug.socket", server_sock=None,
           websocket_class=HandoffWebSocket, **extra):
    """Run the hand-off the way a WSGI server would; return (result, start_response)."""
    start_response = StartResponse()
    environ = make_environ(peer, key, server_sock, **extra)
    result = websocket_class(handler, server)(environ, start_response)
    return result, start_response, environ


def test_handoff_returns_at_once_and_serves_on_its_own_thread(pair):
    server_sock, peer = pair
    server = fake_engineio_server()
    handler_thread = []
    release = threading.Event()

    def handler(ws):
        handler_thread.append(threading.current_thread())
        while (msg := ws.wait()) is not None:
            ws.send(msg)
        release.set()

    result, start_response, _ = accept(peer, handler, server, server_sock=server_sock)
    # back in the "server" thread while the WebSocket is still open
    assert isinstance(result, tuple) and list(result) == [], f"release returned {result!r}"
    assert start_response.calls[0][0] == "101 Switching Protocols"
    assert isinstance(peer.next_event(), AcceptConnection)
    peer.send(TextMessage(data="ping"))
    assert peer.next_message() == "ping"
    assert handler_thread[0] is not threading.current_thread()
    assert handler_thread[0].daemon, "hand-off threads must be daemon threads"
    assert server.websockets.count() == 1
    peer.send(CloseConnection(code=1000))
    assert isinstance(peer.next_event(), CloseConnection)
    assert release.wait(WAIT)


def test_server_socket_object_no_longer_reaches_the_connection(pair):
    # what the WSGI server does after the app returns must not reach the client
    server_sock, peer = pair
    opened = threading.Event()

    def handler(ws):
        opened.set()
        ws.wait()

    accept(peer, handler, fake_engineio_server(), server_sock=server_sock)
    assert opened.wait(WAIT)
    with pytest.raises(OSError):
        server_sock.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
    server_sock.shutdown(socket.SHUT_RDWR)
    server_sock.close()
    assert isinstance(peer.next_event(), AcceptConnection)
    peer.send(BytesMessage(data=b"still here"))
    peer.send(CloseConnection(code=1000))
    assert isinstance(peer.next_event(), CloseConnection), \
        "the connection should outlive the server's shutdown and close"


def test_concurrent_sends_never_interleave_frames(pair):
    server_sock, peer = pair
    senders, per_sender = 4, 200
    done = threading.Event()

    def handler(ws):
        def blast(n):
            for i in range(per_sender):
                ws.send(f"{n}:{i}:" + "x" * (i * 37 % 3000))
        threads = [threading.Thread(target=blast, args=(n,)) for n in range(senders)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done.set()
        ws.wait()

    accept(peer, handler, fake_engineio_server(), server_sock=server_sock)
    assert isinstance(peer.next_event(), AcceptConnection)
    seen = {n: [] for n in range(senders)}
    for _ in range(senders * per_sender):
        n, i, body = peer.next_message().split(":", 2)
        assert body == "x" * (int(i) * 37 % 3000), f"message {n}:{i} corrupted"
        seen[int(n)].append(int(i))
    assert all(order == list(range(per_sender)) for order in seen.values())
    assert done.wait(WAIT)
    peer.send(CloseConnection(code=1000))


def test_close_all_sends_1001_and_waits_for_the_connections(pair):
    server_sock, peer = pair
    server = fake_engineio_server()

    def handler(ws):
        while ws.wait() is not None:
            pass

    accept(peer, handler, server, server_sock=server_sock)
    assert isinstance(peer.next_event(), AcceptConnection)
    result = []
    closer = threading.Thread(target=lambda: result.append(server.websockets.close_all(timeout=WAIT)))
    closer.start()
    event = peer.next_event()
    assert isinstance(event, CloseConnection) and event.code == 1001, f"got {event!r}"
    peer.send(event.response())
    closer.join(WAIT)
    assert result == [1], f"close_all should report 1 clean close, got {result}"
    assert server.websockets.count() == 0


def test_close_all_cuts_a_peer_that_never_answers(pair):
    server_sock, peer = pair
    server = fake_engineio_server()
    finished = threading.Event()

    def handler(ws):
        while ws.wait() is not None:
            pass
        finished.set()

    accept(peer, handler, server, server_sock=server_sock)
    assert server.websockets.close_all(timeout=0.2) == 0
    assert finished.wait(WAIT), "an unanswered close_all must still end the handler"


def test_fallback_serves_in_the_request_thread_and_leaves_the_socket_to_the_server(pair):
    # gunicorn's sync worker: no hand-off, the request thread is held
    server_sock, peer = pair
    server = fake_engineio_server()
    handler_threads = []
    outcome = {}

    def handler(ws):
        handler_threads.append(threading.current_thread())
        while (msg := ws.wait()) is not None:
            ws.send(msg)

    def request_thread():
        outcome["result"], outcome["start_response"], outcome["environ"] = accept(
            peer, handler, server, key="gunicorn.socket", server_sock=server_sock,
            **{"wsgi.multithread": False})

    t = threading.Thread(target=request_thread)
    t.start()
    assert isinstance(peer.next_event(), AcceptConnection)
    peer.send(TextMessage(data="echo"))
    assert peer.next_message() == "echo"
    peer.send(CloseConnection(code=1000))
    assert isinstance(peer.next_event(), CloseConnection)
    t.join(WAIT)
    assert handler_threads == [t], "fallback must run the handler in the request thread"
    assert "gthread" in outcome["environ"][REFUSAL_KEY]
    assert server_sock.fileno() != -1, "the server's socket is the server's to close"
    assert server.websockets.count() == 0


def test_fallback_lets_the_next_handshake_in_before_serving(pair):
    # server.engine's gate admits handshakes one at a time: a WebSocket served
    # in its request thread must not keep the next one out for its whole life
    server_sock, peer = pair
    let_in = threading.Event()
    served_after_let_in = []

    def handler(ws):
        served_after_let_in.append(let_in.is_set())
        while (msg := ws.wait()) is not None:
            ws.send(msg)

    t = threading.Thread(target=accept, args=(peer, handler, fake_engineio_server()),
                         kwargs={"key": "gunicorn.socket", "server_sock": server_sock,
                                 "wsgi.multithread": False, GATE_KEY: let_in.set})
    t.start()
    assert isinstance(peer.next_event(), AcceptConnection)
    assert let_in.wait(WAIT), "the gate was not released while the WebSocket is open"
    peer.send(CloseConnection(code=1000))
    assert isinstance(peer.next_event(), CloseConnection)
    t.join(WAIT)
    assert served_after_let_in == [True]


def test_oversized_message_is_closed_with_1009(pair):
    server_sock, peer = pair
    got = []
    finished = threading.Event()

    def handler(ws):
        while (msg := ws.wait()) is not None:
            got.append(msg)
        finished.set()

    accept(peer, handler, fake_engineio_server(max_size=1000), server_sock=server_sock)
    assert isinstance(peer.next_event(), AcceptConnection)
    peer.send(BytesMessage(data=b"a" * 1000))
    peer.send(BytesMessage(data=b"b" * 600, message_finished=False))
    peer.send(BytesMessage(data=b"b" * 600))
    event = peer.next_event()
    assert isinstance(event, CloseConnection) and event.code == 1009, f"got {event!r}"
    peer.send(event.response())
    assert finished.wait(WAIT), "the handler should see the connection end"
    assert got == [b"a" * 1000], f"expected only the message under the cap, got {len(got)}"


def test_http_1_0_upgrade_is_refused_with_400(pair):
    server_sock, peer = pair
    result, start_response, _ = accept(peer, lambda ws: None, fake_engineio_server(),
                                       server_sock=server_sock, SERVER_PROTOCOL="HTTP/1.0")
    assert start_response.calls[0][0].startswith("400")
    assert isinstance(result, tuple) and b"HTTP/1.1" in b"".join(result)


def test_find_driver_by_environ():
    assert find_driver({"gunicorn.socket": None}).NAME == "gunicorn"
    assert find_driver({"werkzeug.socket": None}).NAME == "werkzeug"
    assert find_driver({"SERVER_SOFTWARE": "mystery/1.0"}) is None
    with pytest.raises(ValueError, match="unknown WebSocket driver 'nope'.*gunicorn"):
        load_driver("nope")


@pytest.mark.parametrize("name", ["gunicorn", "werkzeug"])
def test_tls_connections_are_not_detached(name):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with context.wrap_socket(socket.socket(), server_hostname="x",
                             do_handshake_on_connect=False) as tls_sock:
        environ = {f"{name}.socket": tls_sock, "wsgi.multithread": True}
        assert load_driver(name).detach(environ) is None
        assert "TLS" in environ[REFUSAL_KEY]


@pytest.mark.parametrize("takeover", [True, False])
def test_permessage_deflate_context_takeover_is_configurable(takeover):
    server_sock, client_sock = socket.socketpair()
    with server_sock, client_sock:
        peer = Peer(client_sock, extensions=[PerMessageDeflate()])

        def handler(ws):
            while (msg := ws.wait()) is not None:
                ws.send(msg)

        websocket_class = functools.partial(HandoffWebSocket, deflate_context_takeover=takeover)
        accept(peer, handler, fake_engineio_server(), server_sock=server_sock,
               websocket_class=websocket_class)
        accepted = peer.next_event()
        assert isinstance(accepted, AcceptConnection)
        [deflate] = accepted.extensions
        assert deflate.server_no_context_takeover is (not takeover)
        assert deflate.client_no_context_takeover is (not takeover)
        for text in ("one " * 100, "two " * 100):
            peer.send(TextMessage(data=text))
            assert peer.next_message() == text
        peer.send(CloseConnection(code=1000))
        assert isinstance(peer.next_event(), CloseConnection)
