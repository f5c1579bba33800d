"""The security policy in front of a real server (Werkzeug, threaded, loopback).

Wiring used here, as the extension will do it: the policy wraps the app's
``wsgi_app`` (the Socket.IO middleware), Engine.IO's own origin check is off
(``cors_allowed_origins=[]``), and the Engine.IO connect/disconnect events
report sessions to the policy so its connection caps count open sessions.
"""
import concurrent.futures
import contextlib
import json
import logging
import socket
import threading
import time

import flask
import pytest
import requests
import socketio
import websocket

import server
from server.security import SecurityPolicy
from server.security_sessions import report_sessions
from tests.livesupport import serve_in_thread

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"
BAD_ORIGINS = {
    "foreign": "https://evil.example",
    "null": "null",
    "scheme-only": "https://127.0.0.1:{port}",
    "port-only": "http://127.0.0.1:1",
    "suffix-match": "http://127.0.0.1.evil.example:{port}",
    "userinfo": "http://user@127.0.0.1:{port}",
}


class WatchedPolicy(SecurityPolicy):
    """The policy, plus a condition tests can wait on for closed sessions."""

    def __init__(self, app, **options):
        super().__init__(app, **options)
        self.closed = threading.Condition()
        self.closed_count = 0

    def session_closed(self, sid):
        super().session_closed(sid)
        with self.closed:
            self.closed_count += 1
            self.closed.notify_all()

    def wait_closed(self, count, timeout=30.0):
        with self.closed:
            assert self.closed.wait_for(lambda: self.closed_count >= count, timeout), (
                f"expected {count} closed sessions, saw {self.closed_count}")


@contextlib.contextmanager
def secured(**options):
    app = flask.Flask(__name__)
    # the policy under test is put in front by hand: the built-in one is off
    sio = server.SocketIO(app, cors_allowed_origins=[], security_policy=False)

    @sio.on("echo")
    def echo(data):
        return data

    options.setdefault("ip_limits_on_loopback", True)  # the tests' clients are local
    policy = WatchedPolicy(app.wsgi_app, **options)
    report_sessions(sio.server.eio, policy)
    app.wsgi_app = policy
    with serve_in_thread(app) as url:
        yield url, policy


@pytest.fixture(scope="module")
def live():
    with secured() as (url, _policy):
        yield url


def _origin(template, url):
    return template.format(port=url.rsplit(":", 1)[1])


@pytest.mark.parametrize("kind", sorted(BAD_ORIGINS))
def test_bad_origins_refused_on_polling(live, kind):
    origin = _origin(BAD_ORIGINS[kind], live)
    r = requests.get(live + HANDSHAKE, headers={"Origin": origin}, timeout=10)
    assert r.status_code == 403, f"{kind} origin {origin!r}: got {r.status_code} {r.text!r}"
    assert "Access-Control-Allow-Origin" not in r.headers


@pytest.mark.parametrize("kind", sorted(BAD_ORIGINS))
def test_bad_origins_refused_on_websocket_handshake(live, kind):
    origin = _origin(BAD_ORIGINS[kind], live)
    ws_url = live.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(ws_url, origin=origin, timeout=10)
    assert info.value.status_code == 403, f"{kind}: got {info.value.status_code}"


def test_own_origin_accepted_on_polling_and_websocket(live):
    r = requests.get(live + HANDSHAKE, headers={"Origin": live}, timeout=10)
    assert r.status_code == 200 and r.text.startswith("0{"), (r.status_code, r.text[:80])
    assert r.headers["Access-Control-Allow-Origin"] == live
    ws_url = live.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = websocket.create_connection(ws_url, origin=live, timeout=10)
    try:
        assert ws.recv().startswith("0{")
    finally:
        ws.close()


@pytest.mark.parametrize("transports", [["polling"], ["websocket"], ["polling", "websocket"]])
def test_python_socketio_client_without_origin_round_trips(live, transports):
    with socketio.SimpleClient() as client:
        client.connect(live, transports=transports)
        assert client.call("echo", {"n": 1}, timeout=10) == {"n": 1}


SPOOF = {"Origin": "http://evil.example", "X-Forwarded-Host": "evil.example",
         "X-Forwarded-Proto": "http"}


def test_spoofed_forwarded_host_from_an_untrusted_client_is_ignored(live):
    r = requests.get(live + HANDSHAKE, headers=SPOOF, timeout=10)
    assert r.status_code == 403, (r.status_code, r.text)


@pytest.mark.parametrize("trusted", [1, ["127.0.0.1"]])
def test_forwarded_host_from_a_trusted_proxy_is_honoured(trusted):
    with secured(trusted_proxies=trusted) as (url, _):
        r = requests.get(url + HANDSHAKE, headers=SPOOF, timeout=10)
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers["Access-Control-Allow-Origin"] == "http://evil.example"


def _raw_post(url, head, body=b""):
    """Send a hand-written request; return the status code."""
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head.encode() + b"\r\n" + body)
        status = s.recv(200).split(b"\r\n", 1)[0]
    return int(status.split()[1])


def test_411_and_413_are_answered_before_the_body_is_read():
    with secured(max_http_buffer_size=1000) as (url, _):
        path = "/socket.io/?EIO=4&transport=polling&sid=nosuch"
        chunked = _raw_post(url, f"POST {path} HTTP/1.1\r\nHost: x\r\n"
                                 "Transfer-Encoding: chunked\r\n")
        # announce 10 MB, send nothing: the answer must not wait for the body
        huge = _raw_post(url, f"POST {path} HTTP/1.1\r\nHost: x\r\n"
                              "Content-Length: 10000000\r\n")
    assert (chunked, huge) == (411, 413)


def test_handshake_rate_limit_is_429_with_retry_after():
    with secured(handshake_rate=0.5, handshake_burst=2) as (url, _):
        codes = [requests.get(url + HANDSHAKE, timeout=10) for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert codes[2].headers["Retry-After"] == "2"


@pytest.mark.parametrize("cap, status", [("max_connections_per_ip", 429),
                                         ("max_connections", 503)])
def test_connection_caps_count_open_sessions(cap, status):
    with secured(**{cap: 2}) as (url, policy):
        clients = [socketio.SimpleClient() for _ in range(2)]
        for c in clients:
            c.connect(url, transports=["polling"])
        refused = requests.get(url + HANDSHAKE, timeout=10)
        clients[0].disconnect()
        policy.wait_closed(1)
        again = socketio.SimpleClient()
        again.connect(url, transports=["websocket"])
        again.disconnect()
        clients[1].disconnect()
        policy.wait_closed(3)
        counts = policy.tally.counts()
    assert refused.status_code == status, (refused.status_code, refused.text)
    assert counts == (0, 0), f"every slot returned after the sessions closed, got {counts}"


def _flood_request(url, sid, i):
    path = url + HANDSHAKE + "&sid=" + sid
    kind = i % 4
    if kind == 0:
        return requests.post(path, data=iter([b"x" * 100] * 3), timeout=20).status_code
    if kind == 1:
        return requests.post(path, data=b"x" * 2000, timeout=20).status_code
    if kind == 2:
        return requests.post(path, data=b"\xff\xfe4garbage", timeout=20).status_code
    return requests.get(url + HANDSHAKE, headers={"Origin": f"https://e{i}.example"},
                        timeout=20).status_code


def test_flood_of_malformed_posts_leaves_the_server_serving(caplog):
    options = {"max_http_buffer_size": 1000, "handshake_rate": 1000.0, "handshake_burst": 1000}
    done = threading.Event()
    acked = []

    def well_behaved(url):
        with socketio.SimpleClient() as client:
            client.connect(url, transports=["polling"])
            for i in range(20):
                acked.append(client.call("echo", i, timeout=20))
        done.set()

    with caplog.at_level(logging.WARNING), secured(**options) as (url, _):
        good = threading.Thread(target=well_behaved, args=(url,))
        good.start()
        sid = json.loads(requests.get(url + HANDSHAKE, timeout=10).text[1:])["sid"]
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            codes = list(pool.map(lambda i: _flood_request(url, sid, i), range(200)))
        start = time.monotonic()
        fresh = requests.get(url + HANDSHAKE, timeout=10)
        handshake_seconds = time.monotonic() - start
        good.join(30)
    assert done.is_set() and acked == list(range(20)), f"acked {acked}"
    assert fresh.status_code == 200
    assert all(400 <= c < 500 for c in codes), sorted(set(codes))
    assert not [r for r in caplog.records if r.exc_info], "no tracebacks for bad input"
    print(f"flood codes {sorted(set(codes))}; fresh handshake {handshake_seconds:.3f}s")


def test_malformed_socketio_json_gets_no_traceback(live, caplog):
    sid = json.loads(requests.get(live + HANDSHAKE, timeout=10).text[1:])["sid"]
    path = live + HANDSHAKE + "&sid=" + sid
    with caplog.at_level(logging.WARNING):
        assert requests.post(path, data=b"40", timeout=10).status_code == 200
        status = requests.post(path, data=b'42["echo", {bad', timeout=10).status_code
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert 400 <= status < 500, status


def test_allow_listed_origin_accepted_on_both_transports():
    with secured(cors_allowed_origins=["https://app.example"]) as (url, _):
        r = requests.get(url + HANDSHAKE, headers={"Origin": "https://app.example"},
                         timeout=10)
        ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        ws = websocket.create_connection(ws_url, origin="https://app.example", timeout=10)
        try:
            opened = ws.recv()
        finally:
            ws.close()
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Credentials"] == "true"
    assert opened.startswith("0{"), opened
