"""server.gunicorn_worker and server.front without a server: the head parser, what
the front finds in an app, and what it answers or routes."""
import threading

import flask
import pytest

from server import SocketIO
from server.front import Front, HandshakeLane, encode_answer, probe_environ
from server.gunicorn_worker import parse_head


def test_parse_head_reads_a_complete_head():
    data = (b"GET /healthz?x=1 HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\n"
            b"Upgrade:websocket\r\n\r\nrest")
    head = parse_head(data)
    assert head is not None
    assert (head.method, head.target, head.path, head.version) == \
        ("GET", "/healthz?x=1", "/healthz", "HTTP/1.1")
    assert head.size == len(data) - len(b"rest")
    assert head.header("x-a") == "1, 2"
    assert head.header("upgrade") == "websocket"
    assert head.header("cookie") is None


@pytest.mark.parametrize("data", [
    b"GET /healthz HTTP/1.1\r\nHost: a\r\n",              # not complete yet
    b"GET http://a/healthz HTTP/1.1\r\n\r\n",             # absolute form
    b"GET * HTTP/1.1\r\n\r\n",
    b"GET /healthz HTTP/2.0\r\n\r\n",
    b"GET  /healthz HTTP/1.1\r\n\r\n",                    # two spaces
    b"GET /healthz HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",  # obsolete line folding
    b"GET /healthz HTTP/1.1\r\nHost : a\r\n\r\n",         # space before the colon
    b"G3T /healthz HTTP/1.1\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",                  # HTTP/2 preface
])
def test_parse_head_leaves_anything_unusual_to_gunicorn(data):
    assert parse_head(data) is None


def _app(**options):
    app = flask.Flask(__name__)
    SocketIO(app, **options)
    return app


def test_front_finds_the_ops_layer_and_the_socketio_path():
    front = Front.find(_app())
    assert front is not None and front.ops is not None
    assert front.engineio_path == "/socket.io/"
    assert Front.find(_app(path="rt")).engineio_path == "/rt/"


def test_front_without_health_paths_still_routes_handshakes():
    front = Front.find(_app(health_path=None, ready_path=None, metrics_path=None))
    assert front is not None and front.ops is None and front.engineio_path == "/socket.io/"
    assert Front.find(flask.Flask(__name__)) is None


def _inline(front, data):
    head = parse_head(data)
    return len(data) == head.size and front.inline(head.method, head.target, head.header)


def _handshake(front, data):
    head = parse_head(data)
    return front.handshake(head.target, head.header)


def test_front_routes_only_plain_health_requests_and_socketio_handshakes():
    front = Front.find(_app())
    plain = b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
    assert _inline(front, plain)
    body = b"GET /healthz HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"
    assert not _inline(front, body)
    chunked = b"GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert not _inline(front, chunked)
    pipelined = plain + b"GET /"
    assert not _inline(front, pipelined)
    browser = b"GET /healthz HTTP/1.1\r\nOrigin: https://a\r\n\r\n"
    assert not _inline(front, browser)
    fetch = b"GET /healthz HTTP/1.1\r\nSec-Fetch-Site: same-origin\r\n\r\n"
    assert not _inline(front, fetch)
    post = b"POST /healthz HTTP/1.1\r\n\r\n"
    assert not _inline(front, post)
    quoted = b"GET /health%7A HTTP/1.1\r\n\r\n"
    assert not _inline(front, quoted)
    upgrade = b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nUpgrade: WebSocket\r\n\r\n"
    assert _handshake(front, upgrade)
    other = b"GET /chat HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"
    assert not _handshake(front, other)
    polling = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n\r\n"
    assert not _handshake(front, polling)


def test_front_answers_the_health_paths_only():
    front = Front.find(_app())
    environ = probe_environ("GET", "/healthz?x=1", "HTTP/1.1",
                            [("host", "a"), ("x-a", "1"), ("x-a", "2")],
                            "127.0.0.1", ("127.0.0.1", "5000"))
    assert (environ["PATH_INFO"], environ["QUERY_STRING"], environ["HTTP_X_A"]) == \
        ("/healthz", "x=1", "1, 2")
    status, headers, body = front.answer(environ)
    assert (status, body) == ("200 OK", b"ok\n")
    data = encode_answer((status, headers, body), close=False)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and rest == b"ok\n"
    assert b"\r\nConnection: keep-alive" in head and b"\r\nDate: " in head
    assert b"Connection: close" in encode_answer((status, headers, body), close=True)
    other = probe_environ("GET", "/metrics", "HTTP/1.1", [], "127.0.0.1", ("a", "1"))
    assert front.answer(other) is None
    assert Front(None, "/socket.io/").answer(environ) is None


def test_handshake_lane_counts_as_held_only_when_every_thread_is_held():
    lane = HandshakeLane(2, held_after=0.0)
    started, release = threading.Semaphore(0), threading.Event()

    def hold():
        started.release()
        return release.wait(20)

    try:
        assert not lane.held()
        first = lane.submit(hold)
        assert started.acquire(timeout=20)
        assert not lane.held(), "one of two threads held: the lane still takes handshakes"
        second = lane.submit(hold)
        assert started.acquire(timeout=20)
        assert lane.held(), "both threads held past held_after: the lane should say so"
    finally:
        release.set()
    assert first.result(20) and second.result(20)
    assert not lane.held()
    lane.shutdown()
    assert not HandshakeLane(1).held()
