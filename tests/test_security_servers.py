"""The security policy on real uWSGI and waitress, as shipped (the live harness).

gunicorn (the shipped gunicorn.conf.py) is included; tests/test_security_gunicorn.py
has its proxy and 411/413 tests.  Each server
serves tests/live/apps/liveapp.py with the default policy, started once per
module on a free loopback port and stopped by its PID.  Per server: foreign
origins are refused on both transports and the server's own is accepted;
200 concurrent malformed or oversized POSTs leave it answering a new
handshake while a well-behaved client completes all its acked round-trips;
a 50-emit polling burst from python-socketio (and from the official JS
client when node is there) is fully acknowledged.
"""
from __future__ import annotations

import concurrent.futures
import json
import shutil
import socket
import subprocess
import threading

import pytest
import requests
import socketio
import websocket

from tests.live.harness import BIN, JS_DIR, SERVERS, js_client_ready, node, running

pytestmark = pytest.mark.live

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"
BAD_ORIGINS = {
    "foreign": "https://evil.example",
    "null": "null",
    "scheme-only": "https://127.0.0.1:{port}",
    "port-only": "http://127.0.0.1:1",
    "suffix": "http://127.0.0.1.evil.example:{port}",
    "userinfo": "http://user@127.0.0.1:{port}",
}


@pytest.fixture(scope="module",
                params=["gunicorn-gthread", "uwsgi-http-socket", "uwsgi-router", "waitress"])
def live(request, tmp_path_factory):
    kind = SERVERS[request.param]
    if "uwsgi" in kind.needs and not (BIN / "uwsgi").exists() and not shutil.which("uwsgi"):
        pytest.skip("uWSGI is not installed (pip install uwsgi)")
    with running(kind, tmp_path_factory.mktemp(kind.name)) as server:
        yield server


def _handshake(url: str, origin: str | None = None) -> requests.Response:
    headers = {"Origin": origin} if origin else {}
    return requests.get(url + HANDSHAKE, headers=headers, timeout=20)


def _ws_status(url: str, origin: str) -> int:
    ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    try:
        ws = websocket.create_connection(ws_url, origin=origin, timeout=20)
    except websocket.WebSocketBadStatusException as e:
        return e.status_code
    ws.close()
    return 101


@pytest.mark.parametrize("name", sorted(BAD_ORIGINS))
def test_bad_origins_refused_on_both_transports(live, name):
    origin = BAD_ORIGINS[name].format(port=live.port)
    polling = _handshake(live.url, origin).status_code
    assert (polling, _ws_status(live.url, origin)) == (403, 403), (
        f"{live.name}: Origin {origin!r} ({name}) should get 403 on polling and WebSocket\n"
        f"{live.log_tail()}")


def test_own_origin_accepted_on_both_transports(live):
    origin = live.url
    response = _handshake(live.url, origin)
    assert response.status_code == 200 and response.text.startswith("0{"), (
        response.status_code, response.text[:200])
    assert response.headers.get("Access-Control-Allow-Origin") is None or \
        response.headers["Access-Control-Allow-Origin"] == origin
    assert _ws_status(live.url, origin) == 101


def _raw(live, request: bytes, half_close: bool = False) -> int:
    """Send one raw request; the status code, or 0 if the server closed first."""
    with socket.create_connection(("127.0.0.1", live.port), timeout=30) as s:
        try:
            s.sendall(request)
            if half_close:
                # a server that buffers bodies (waitress) sees the end instead of waiting
                s.shutdown(socket.SHUT_WR)
            head = s.recv(200)
        except OSError:
            return 0
    parts = head.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def test_malformed_post_flood_leaves_the_server_serving(live):
    sid = json.loads(_handshake(live.url).text[1:])["sid"]
    path = f"{HANDSHAKE}&sid={sid}"
    bad = [
        # oversized: refused from the header, nothing read
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n".encode(),
        # chunked: no Content-Length
        f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n0\r\n\r\n".encode(),
        # bad UTF-8 and bad packets to an unknown session
        (f"POST {HANDSHAKE}&sid=nosuchsession HTTP/1.1\r\nHost: x\r\n"
         "Content-Length: 4\r\n\r\n").encode() + b"4\xff\xfe\xfd",
        (f"POST {HANDSHAKE}&sid=nosuchsession HTTP/1.1\r\nHost: x\r\n"
         "Content-Length: 8\r\nConnection: close\r\n\r\n").encode() + b"42[\"x\"\x1ex",
    ]
    client = socketio.Client(reconnection=False)
    client.connect(live.url, transports=["websocket"], wait_timeout=20)
    answers: list = []
    errors: list = []
    ready = threading.Event()

    def well_behaved():
        ready.wait(30)
        try:
            for n in range(20):
                answers.append(client.call("echo", n, timeout=30))
        except socketio.exceptions.SocketIOError as e:  # reported below
            errors.append(repr(e))

    caller = threading.Thread(target=well_behaved, daemon=True)
    caller.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
            ready.set()
            statuses = list(pool.map(
                lambda n: _raw(live, bad[n % 4], half_close=n % 4 == 0), range(200)))
        caller.join(120)
        assert not caller.is_alive(), "the well-behaved client did not finish in 120 s"
        assert (answers, errors) == (list(range(20)), []), (
            f"{live.name}: acked round-trips during the flood: {answers} errors {errors}")
    finally:
        client.disconnect()
    server_errors = [s for s in statuses if s >= 500]
    assert not server_errors, f"{live.name}: 5xx answers to malformed POSTs: {server_errors}"
    by_kind = [set(statuses[k::4]) for k in range(4)]
    # waitress buffers a body before calling the app: the oversized POST,
    # whose body never comes, ends with the connection (0; the uWSGI router
    # also gives up on a half-closed request), and waitress de-chunks
    # a chunked body, which Engine.IO then refuses (400)
    assert by_kind[0] <= {413, 0} and by_kind[1] <= {411, 400}, by_kind
    assert by_kind[2] == by_kind[3] == {400}, by_kind
    fresh = _handshake(live.url)
    assert fresh.status_code == 200 and fresh.text.startswith("0{"), (
        f"{live.name}: a new handshake after the flood got {fresh.status_code}\n"
        f"{live.log_tail()}")


def test_fifty_emit_polling_burst_is_fully_acknowledged(live):
    client = socketio.Client(reconnection=False)
    client.connect(live.url, transports=["polling"], wait_timeout=20)
    acks: list = []
    done = threading.Event()

    def ack(value):
        acks.append(value)
        if len(acks) == 50:
            done.set()

    try:
        for n in range(50):
            client.emit("echo", n, callback=ack)
        assert done.wait(60), f"{live.name}: {len(acks)} of 50 acks arrived: {acks}"
        assert sorted(acks) == list(range(50)), acks
    finally:
        client.disconnect()


JS_BURST = """
const { io } = require("socket.io-client");
const socket = io(process.argv[1], { transports: ["polling"], reconnection: false,
                                      forceNew: true });
const timer = setTimeout(() => { console.log(JSON.stringify({ error: "timeout" }));
                                 process.exit(1); }, 50000);
socket.on("connect", async () => {
  const acks = await Promise.all([...Array(50).keys()].map(
    (n) => socket.timeout(40000).emitWithAck("echo", n)));
  clearTimeout(timer);
  console.log(JSON.stringify({ acks }));
  socket.disconnect();
});
socket.on("connect_error", (e) => { console.log(JSON.stringify({ error: e.message }));
                                    process.exit(1); });
"""


def test_fifty_emit_polling_burst_from_the_js_client(live):
    why = js_client_ready()
    if why:
        pytest.skip(why)
    done = subprocess.run([node() or "node", "-e", JS_BURST, live.url], cwd=JS_DIR,
                          capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    assert json.loads(done.stdout) == {"acks": list(range(50))}, done.stdout[-2000:]
