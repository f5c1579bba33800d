"""server.gunicorn_worker without a server: the head parser and what it finds in an app."""
import flask
import pytest

from server import SocketIO
from server.gunicorn_worker import _Front, parse_head


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
    front = _Front.find(_app())
    assert front is not None and front.ops is not None
    assert front.engineio_path == "/socket.io/"
    assert _Front.find(_app(path="rt")).engineio_path == "/rt/"


def test_front_without_health_paths_still_routes_handshakes():
    front = _Front.find(_app(health_path=None, ready_path=None, metrics_path=None))
    assert front is not None and front.ops is None and front.engineio_path == "/socket.io/"
    assert _Front.find(flask.Flask(__name__)) is None


def test_front_routes_only_plain_health_requests_and_socketio_handshakes():
    front = _Front.find(_app())
    plain = b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
    assert front.inline(parse_head(plain), plain)
    body = b"GET /healthz HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"
    assert not front.inline(parse_head(body), body)
    pipelined = plain + b"GET /"
    assert not front.inline(parse_head(pipelined), pipelined)
    browser = b"GET /healthz HTTP/1.1\r\nOrigin: https://a\r\n\r\n"
    assert not front.inline(parse_head(browser), browser)
    post = b"POST /healthz HTTP/1.1\r\n\r\n"
    assert not front.inline(parse_head(post), post)
    upgrade = b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nUpgrade: WebSocket\r\n\r\n"
    assert front.handshake(parse_head(upgrade))
    other = b"GET /chat HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"
    assert not front.handshake(parse_head(other))
    polling = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n\r\n"
    assert not front.handshake(parse_head(polling))
