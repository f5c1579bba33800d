"""The Flask-SocketIO API over real HTTP, with python-socketio's Client."""
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import socketio as sio_client

from tests.chat_app import create_app, create_wildcard_app
from tests.livesupport import serve_in_thread
from tests.sioclient import OrderedClient

TRANSPORTS = {"websocket": ["websocket"], "polling": ["polling"],
              "upgrade": ["polling", "websocket"]}


@pytest.fixture(scope="module")
def live():
    # 1 MiB of binary is 1.4 MB of base64 on the polling transport
    app, socketio = create_app(max_http_buffer_size=2_000_000)
    with serve_in_thread(app) as url:
        yield app, socketio, url


@pytest.fixture(params=sorted(TRANSPORTS))
def client_factory(request, live):
    app, socketio, url = live
    made = []

    def make(auth=None, namespaces=None, **kwargs):
        client = OrderedClient(reconnection=False, **kwargs)
        made.append(client)
        client.connect(url, auth=auth, transports=TRANSPORTS[request.param],
                       namespaces=namespaces, wait_timeout=10)
        return client

    yield make
    for client in made:
        client.disconnect()


def test_connect_auth_and_acked_echo(client_factory, live):
    app = live[0]
    client = client_factory(auth={"token": "abc"})
    assert any(c["auth"] == {"token": "abc"} and c["sid"] == client.get_sid()
               for c in app.state["connects"])
    assert client.call("echo", {"n": 1}, timeout=10) == {"n": 1}
    assert client.call("echo", (1, "two"), timeout=10) == (1, "two")


def test_refused_connection_reaches_connect_error(live):
    url = live[2]
    client = sio_client.Client(reconnection=False)
    errors = []
    client.on("connect_error", lambda data: errors.append(data))
    with pytest.raises(sio_client.exceptions.ConnectionError):
        client.connect(url, auth={"refuse": "banned"}, wait_timeout=10)
    assert errors == [{"message": "refused", "data": {"why": "banned"}}]


def test_binary_round_trip_is_byte_exact(client_factory):
    client = client_factory()
    blob = bytes(range(256)) * 4096  # 1 MiB
    echoed = client.call("echo", blob, timeout=30)
    assert len(echoed) == len(blob) and echoed == blob


def test_rooms_broadcast_and_server_disconnect(client_factory):
    received = {"a": [], "b": [], "c": []}
    events = {k: threading.Event() for k in received}
    clients = {}
    for name in received:
        client = client_factory()

        def on_room(data, name=name):
            received[name].append(data)
            events[name].set()
        client.on("room_msg", on_room)
        clients[name] = client
    clients["a"].call("join", "r1", timeout=10)
    clients["b"].call("join", "r1", timeout=10)
    clients["a"].emit("to_room", ("r1", "hello"))
    assert events["a"].wait(10) and events["b"].wait(10)
    # c is not in the room; a marker sent to c after the room message proves
    # c's queue was flushed without it
    marker = clients["c"].call("echo", "marker", timeout=10)
    assert marker == "marker" and received["c"] == []
    gone = threading.Event()
    clients["c"].on("disconnect", lambda *a: gone.set())
    clients["c"].emit("kick")
    assert gone.wait(10), "server-side disconnect did not reach the client"


def test_background_task_and_burst(client_factory):
    client = client_factory()
    ticks = []
    done = threading.Event()

    def on_tick(i):
        ticks.append(i)
        if len(ticks) == 50:
            done.set()
    client.on("tick", on_tick)
    client.emit("start_task", 50)
    assert done.wait(20), f"expected 50 ticks, got {len(ticks)}"
    # OrderedClient handles messages in arrival order (tests/sioclient.py)
    assert ticks == list(range(50))


def test_server_calls_client_and_gets_answer(client_factory):
    client = client_factory()
    client.on("question", lambda data: {"answer": data["q"] + 41})
    assert client.call("ask_client", timeout=10) == {"answer": 42}


def test_emit_callback_runs_with_request_context(client_factory, live):
    app = live[0]
    client = client_factory()
    client.on("needs_ack", lambda data: "acked")
    before = len(app.state["acks"])
    client.emit("emit_with_ack")
    # a round-trip after the ack arrives orders it before our check
    for _ in range(50):
        client.call("echo", 0, timeout=10)
        if len(app.state["acks"]) > before:
            break
    ack = app.state["acks"][-1]
    assert ack["args"] == ("acked",) and ack["sid"] == client.get_sid()


def test_class_namespace_over_http(client_factory):
    client = client_factory(namespaces=["/chat"])
    assert client.call("say", "hi", namespace="/chat", timeout=10) == "ok"


def test_catch_all_namespace_class_over_http():
    app, socketio = create_wildcard_app(class_based=True)
    with serve_in_thread(app) as url:
        client = sio_client.Client(reconnection=False)
        client.connect(url, namespaces=["/room-7"], wait_timeout=10)
        try:
            reply = client.call("ping_any", 3, namespace="/room-7", timeout=10)
            assert reply["namespace"] == "/room-7" and reply["data"] == 3
            assert reply["sid"] == client.get_sid("/room-7")
        finally:
            client.disconnect()


def test_closed_websocket_session_is_forgotten_at_once(live):
    socketio, url = live[1], live[2]
    client = sio_client.Client(reconnection=False)
    client.connect(url, transports=["websocket"], wait_timeout=10)
    eio_sid = client.eio.sid
    assert eio_sid in socketio.server.eio.sockets
    client.disconnect()
    gone = threading.Event()

    def watch():
        while eio_sid in socketio.server.eio.sockets:
            socketio.sleep(0.01)
        gone.set()

    socketio.start_background_task(watch)
    # well before python-engineio's monitor sweep (every ping_timeout, 20 s)
    assert gone.wait(10), "the closed WebSocket session stayed in eio.sockets"


@pytest.mark.parametrize("header", ['451-["echo",{"_placeholder":true,"num":0}]',
                                    '499999999999-["echo",{"_placeholder":true,"num":0}]'])
def test_binary_attachments_are_bounded(live, header):
    """Too many attachments announced, or more attachment bytes than one
    message may carry, close the session instead of growing memory."""
    import websocket

    url = live[2].replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = websocket.create_connection(url, timeout=10)
    try:
        assert ws.recv().startswith("0{")
        ws.send("40")
        assert ws.recv().startswith("40")
        ws.send(header)
        closed = False
        for _ in range(50):  # bounded: attachments until the server closes
            try:
                ws.send_binary(b"x" * 100_000)
                frame = ws.recv() if header.startswith("49") else None
                if frame == "1" or frame == "":
                    closed = True
                    break
            except (websocket.WebSocketConnectionClosedException, BrokenPipeError,
                    ConnectionResetError):
                closed = True
                break
        if not closed:
            ws.settimeout(10)
            try:
                closed = ws.recv() in ("1", "")
            except (websocket.WebSocketConnectionClosedException, ConnectionResetError):
                closed = True
        assert closed, "the server kept collecting attachments"
    finally:
        ws.close()


@pytest.mark.parametrize("compression", [False, True])
def test_websocket_compression_is_a_setting(compression):
    import base64
    import os
    import socket

    app, _ = create_app(websocket_compression=compression)
    with serve_in_thread(app) as url:
        port = int(url.rsplit(":", 1)[1])
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                   f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                   f"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request.encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                assert chunk, f"connection closed during the handshake: {head!r}"
                head += chunk
    status, _, headers = head.partition(b"\r\n\r\n")[0].decode().partition("\r\n")
    assert " 101 " in status, status
    accepted = [line for line in headers.lower().split("\r\n")
                if line.startswith("sec-websocket-extensions")]
    assert bool(accepted and "permessage-deflate" in accepted[0]) is compression, (
        f"websocket_compression={compression}: server answered {accepted!r}")


# -- a polling client leaving ----------------------------------------------------------
def _polling_session(url: str) -> tuple[str, Callable[[str], None], Callable[[], list[str]]]:
    """A raw Engine.IO polling session: (its query string, post(body), get() -> packets)."""
    base = f"{url}/socket.io/?EIO=4&transport=polling"
    sid = json.loads(requests.get(base, timeout=10).text[1:])["sid"]
    query = f"{base}&sid={sid}"

    def post(body: str) -> None:
        answer = requests.post(query, data=body.encode(), timeout=10)
        assert answer.status_code == 200, f"POST {body!r}: {answer.status_code} {answer.text}"

    def get() -> list[str]:
        answer = requests.get(query, timeout=30)
        assert answer.status_code == 200, f"GET: {answer.status_code} {answer.text}"
        return answer.text.split("\x1e")

    return query, post, get


def _read_until(get: Callable[[], list[str]], *prefixes: str) -> None:
    """Poll until a packet starting with each prefix has come (at most 5 polls)."""
    missing = set(prefixes)
    for _ in range(5):
        for packet in get():
            missing -= {p for p in missing if packet.startswith(p)}
        if not missing:
            return
    raise AssertionError(f"expected packets starting with {sorted(missing)} within 5 polls")


def test_leaving_the_last_namespace_ends_the_pending_poll(live):
    """python-engineio's client can lose its CLOSE on disconnect and then waits for its
    pending long-poll (up to 25 s, holding a request thread): leaving the last namespace
    answers that poll at once with a NOOP (packet "6")."""
    _app, _socketio, url = live
    _query, post, get = _polling_session(url)
    post("40")
    _read_until(get, "40{")
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(get)  # answered by the NOOP, whether it is sent before or after
        post("41")
        try:
            packets = pending.result(20)
        except TimeoutError:
            pytest.fail("the pending poll was still open 20 s after the client left '/'")
    assert packets == ["6"], f"expected the pending poll to end with a NOOP, got {packets}"


def test_leaving_one_of_two_namespaces_keeps_the_poll_open(live):
    _app, _socketio, url = live
    _query, post, get = _polling_session(url)
    post("40")
    post("40/chat,")
    _read_until(get, "40{", "40/chat,{")
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(get)
        post("41/chat,")  # handled before the POST returns: a NOOP would be queued by now
        post('421["echo","still here"]')
        packets = pending.result(20)
    assert "6" not in packets and '431["still here"]' in packets, (
        f"expected only the echo's ack while '/' stays connected, got {packets}")
