"""Limits inside a session: event rate, connect timeout; cookie flags by default."""
from __future__ import annotations

import json
import subprocess
import threading
import time

import flask
import pytest
import requests
import socketio
import websocket
from flask.sessions import SecureCookieSessionInterface

import server
from server.errors import ConfigurationError
from server.security_events import ADMIT, CLOSE, DROP, ConnectDeadlines, EventBudget
from tests.live.harness import JS_DIR, js_client_ready, node
from tests.livesupport import serve_in_thread

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


# -- the token bucket ---------------------------------------------------------------
def test_budget_admits_the_burst_then_drops_then_closes_at_three_times():
    budget = EventBudget(rate=10, burst=5)
    verdicts = [budget.take("a", now=100.0) for _ in range(16)]
    # 5 admitted (the burst), 10 dropped (2 x burst strikes), the 16th closes
    assert verdicts == [ADMIT] * 5 + [DROP] * 10 + [CLOSE], verdicts
    assert budget.take("b", now=100.0) == ADMIT, "buckets are per session"


def test_budget_refills_at_the_rate_and_forgets():
    budget = EventBudget(rate=10, burst=2)
    assert [budget.take("a", now=0.0) for _ in range(3)] == [ADMIT, ADMIT, DROP]
    assert budget.take("a", now=0.1) == ADMIT, "0.1 s at 10/s gives one token back"
    assert budget.take("a", now=0.1) == DROP
    # a client at twice the rate never reaches the close threshold
    now = 0.1
    for _ in range(200):
        now += 0.05
        assert budget.take("a", now=now) in (ADMIT, DROP)
    budget.forget("a")
    assert len(budget) == 0


def test_limits_can_be_turned_off():
    sio = server.SocketIO(flask.Flask(__name__), event_rate=None, connect_timeout=None)
    guard = sio.server.event_guard
    assert (guard.budget, guard.deadlines) == (None, None)
    assert guard.admit("any", "/", None, ["x"]) is True


def test_event_settings_are_validated():
    with pytest.raises(ConfigurationError, match="event_rate=0"):
        server.SocketIO(event_rate=0)
    with pytest.raises(ConfigurationError, match="event_burst=None"):
        server.SocketIO(event_burst=None)
    with pytest.raises(ConfigurationError, match="connect_timeout=-1"):
        server.SocketIO(connect_timeout=-1)


# -- the connect deadline timer ---------------------------------------------------------
def test_deadlines_use_one_thread_and_expire_in_order():
    expired = []
    done = threading.Event()

    def expire(key):
        expired.append(key)
        if len(expired) == 50:
            done.set()

    before = threading.active_count()
    deadlines = ConnectDeadlines(0.05, expire)
    try:
        for n in range(50):
            deadlines.opened(f"s{n}")
        assert threading.active_count() <= before + 1, "one timer thread, not one per session"
        assert done.wait(30), f"expected 50 expiries, got {len(expired)}"
        assert expired == [f"s{n}" for n in range(50)]
        _wait(lambda: not deadlines.running, what="the idle timer thread to end")
        deadlines.opened("again")  # a new thread serves the next deadline
        _wait(lambda: expired[-1:] == ["again"], what="the next expiry")
    finally:
        deadlines.stop()


# -- live: a real server in this process --------------------------------------------
@pytest.fixture(scope="module")
def live():
    app = flask.Flask(__name__)
    sio = server.SocketIO(app, event_rate=20, event_burst=10, connect_timeout=0.5)
    disconnects = []

    @sio.on("echo")
    def echo(data):
        return data

    @sio.on("disconnect")
    def on_disconnect(reason=None):
        disconnects.append(reason)

    with serve_in_thread(app) as url:
        yield url, sio


def _wait(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_over_budget_events_are_acked_with_an_error(live, transport):
    url, _sio = live
    client = socketio.Client(reconnection=False)
    client.connect(url, transports=[transport], wait_timeout=10)
    try:
        results = []
        done = threading.Event()

        def collect(value):
            results.append(value)
            if len(results) == 15:
                done.set()

        for n in range(15):  # burst of 10 plus 5 over: below the close threshold
            client.emit("echo", n, callback=collect)
        assert done.wait(30), f"expected 15 acks, got {len(results)}: {results}"
        plain = [r for r in results if isinstance(r, int)]
        errors = [r for r in results if isinstance(r, dict)]
        assert len(plain) >= 10 and errors, results
        assert all(e["error"] == "rate_limited" and e["retry_after"] >= 0 for e in errors)
        assert client.connected, "a client within three times its budget stays connected"
    finally:
        client.disconnect()


JS_OVER_BUDGET = """
const { io } = require("socket.io-client");
const socket = io(process.argv[1], { transports: ["websocket"], reconnection: false,
                                      forceNew: true });
const timer = setTimeout(() => { console.log(JSON.stringify({ error: "timeout" }));
                                 process.exit(1); }, 50000);
socket.on("connect", async () => {
  const acks = await Promise.all([...Array(15).keys()].map(
    (n) => socket.timeout(40000).emitWithAck("echo", n)));
  clearTimeout(timer);
  console.log(JSON.stringify({ acks, connected: socket.connected }));
  socket.disconnect();
});
"""


def test_official_js_client_sees_the_error_ack(live):
    why = js_client_ready()
    if why:
        pytest.skip(why)
    url, _sio = live
    done = subprocess.run([node() or "node", "-e", JS_OVER_BUDGET, url], cwd=JS_DIR,
                          capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    result = json.loads(done.stdout)
    errors = [a for a in result["acks"] if isinstance(a, dict)]
    assert len(result["acks"]) == 15 and errors and result["connected"], result
    assert {e["error"] for e in errors} == {"rate_limited"}, errors


def test_sustained_abuse_disconnects_the_client(live):
    url, sio = live
    client = socketio.Client(reconnection=False)
    reasons = []
    gone = threading.Event()
    client.on("disconnect", lambda reason=None: (reasons.append(reason), gone.set()))
    client.connect(url, transports=["websocket"], wait_timeout=10)
    for n in range(200):  # far over 3 x burst at once
        if gone.is_set():
            break
        client.emit("echo", n)
    assert gone.wait(30), "expected the server to disconnect the client"
    assert reasons == [client.reason.SERVER_DISCONNECT], reasons
    _wait(lambda: len(sio.server.event_guard.budget) == 0, what="the bucket to be freed")


def test_session_without_connect_is_closed_at_connect_timeout(live):
    url, _sio = live
    sid = json.loads(requests.get(url + HANDSHAKE, timeout=10).text[1:])["sid"]
    # the long poll ends with the Engine.IO CLOSE packet once the timer fires
    answer = requests.get(f"{url}{HANDSHAKE}&sid={sid}", timeout=30)
    assert (answer.status_code, answer.text) == (200, "1"), (answer.status_code, answer.text)
    after = requests.get(f"{url}{HANDSHAKE}&sid={sid}", timeout=30)
    assert after.status_code == 400, "the session must be gone"


def test_websocket_session_without_connect_is_closed_at_connect_timeout(live):
    url, _sio = live
    ws = websocket.create_connection(
        url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket", timeout=30)
    try:
        assert ws.recv().startswith("0{"), "expected the Engine.IO open packet"
        received = []
        while True:  # pings may come first; then the close packet or the end
            try:
                message = ws.recv()
            except websocket.WebSocketConnectionClosedException:
                break
            received.append(message)
            if message in ("1", ""):
                break
        assert received[-1:] in (["1"], [""], []), f"received {received!r}"
    finally:
        ws.close()


def test_connected_client_outlives_connect_timeout(live):
    url, sio = live
    client = socketio.Client(reconnection=False)
    client.connect(url, transports=["polling"], wait_timeout=10)
    try:
        _wait(lambda: sio.server.event_guard.deadlines.pending() == 0,
              what="the connect deadline to pass")
        assert client.call("echo", "still here", timeout=10) == "still here"
    finally:
        client.disconnect()


def test_test_client_is_exempt_from_the_event_rate():
    app = flask.Flask(__name__)
    sio = server.SocketIO(app, event_rate=1, event_burst=1)

    @sio.on("echo")
    def echo(data):
        return data

    client = sio.test_client(app)
    assert [client.emit("echo", n, callback=True) for n in range(20)] == list(range(20))


# -- cookies ------------------------------------------------------------------------
def _session_app(**config):
    app = flask.Flask(__name__)
    app.config.update(SECRET_KEY="test", **config)

    @app.route("/login")
    def login():
        flask.session["user"] = "x"
        return "ok"

    server.SocketIO(app)
    return app


def _set_cookie(app, base_url, path="/login"):
    response = app.test_client().get(path, base_url=base_url)
    return response.headers.get("Set-Cookie", "")


def test_session_cookie_is_lax_httponly_and_secure_over_https():
    app = _session_app()
    plain = _set_cookie(app, "http://localhost")
    tls = _set_cookie(app, "https://localhost")
    assert "SameSite=Lax" in plain and "HttpOnly" in plain and "Secure" not in plain, plain
    assert "SameSite=Lax" in tls and "HttpOnly" in tls and "Secure" in tls, tls


def test_session_cookie_keeps_the_apps_explicit_choice():
    app = _session_app(SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_HTTPONLY=False,
                       SESSION_COOKIE_SECURE=True)
    cookie = _set_cookie(app, "http://localhost")
    assert "SameSite=Strict" in cookie and "HttpOnly" not in cookie and "Secure" in cookie, (
        cookie)


def test_custom_session_interface_is_left_alone():
    class Mine(SecureCookieSessionInterface):
        pass

    app = flask.Flask(__name__)
    app.session_interface = Mine()
    server.SocketIO(app)
    assert type(app.session_interface) is Mine


def test_engineio_cookie_flags():
    app = flask.Flask(__name__)
    server.SocketIO(app, cookie="io")
    plain = _set_cookie(app, "http://localhost", HANDSHAKE)
    tls = _set_cookie(app, "https://localhost", HANDSHAKE)
    assert plain.startswith("io=") and "SameSite=Lax" in plain and "HttpOnly" in plain, plain
    assert "Secure" not in plain, plain
    assert "Secure" in tls and "HttpOnly" in tls, tls
