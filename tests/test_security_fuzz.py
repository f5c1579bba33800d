"""Property-based fuzzing of the polling and WebSocket transports.

One server per target for the whole module (Werkzeug in this process, and a
real gunicorn gthread subprocess), fed random polling bodies and random
WebSocket frames (bad opcodes, RSV bits, unmasked, fragmented, bad UTF-8,
oversized).  After every case: no 5xx, and a fresh handshake is answered.
After the run, once the sessions have timed out (short ping and connect
timeouts), the server's thread count is back near where it started: no
thread is left blocked by a bad input.
"""
from __future__ import annotations

import base64
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import flask
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import server
from tests.livesupport import free_port, serve_in_thread

pytestmark = [pytest.mark.live, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
HANDSHAKE = "/socket.io/?EIO=4&transport=polling"
MAX_BUFFER = 10_000
OPTIONS = {"max_http_buffer_size": MAX_BUFFER, "ping_interval": 1, "ping_timeout": 1,
           "connect_timeout": 1, "handler_threads": 4}
FUZZ = settings(max_examples=100, deadline=timedelta(seconds=30), database=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])

GUNICORN_APP = f'''
import flask

import server

app = flask.Flask(__name__)
sio = server.SocketIO(app, **{OPTIONS!r})


@app.route("/ping")
def ping():
    return "pong"


@sio.on("echo")
def echo(data):
    return data
'''


@dataclass
class Target:
    url: str
    threads: Callable[[], int]
    log: Callable[[], str]


def _fuzz_app() -> flask.Flask:
    app = flask.Flask(__name__)
    sio = server.SocketIO(app, **OPTIONS)

    @sio.on("echo")
    def echo(data):
        return data

    return app


def _proc_threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no Threads: line for pid {pid}")


def _gunicorn_worker(master: int) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise AssertionError("gunicorn started no worker within 30 s")


@pytest.fixture(scope="module", params=["werkzeug", "gunicorn"])
def target(request, tmp_path_factory):
    if request.param == "werkzeug":
        with serve_in_thread(_fuzz_app()) as url:
            yield Target(url, threading.active_count, lambda: "(in this process)")
        return
    tmp = tmp_path_factory.mktemp("fuzz_gunicorn")
    (tmp / "fuzz_app.py").write_text(GUNICORN_APP)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVER_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(tmp)])
    log_path = tmp / "gunicorn.log"
    log = open(log_path, "w+b")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "8", "-w", "1",
         "-b", f"127.0.0.1:{port}", "--graceful-timeout", "2", "--no-control-socket",
         "fuzz_app:app"], cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"gunicorn exited:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, "gunicorn not ready after 60 s"
            try:
                if requests.get(url + "/ping", timeout=2).text == "pong":
                    break
            except requests.RequestException:
                time.sleep(0.05)
        worker = _gunicorn_worker(proc.pid)
        yield Target(url, lambda: _proc_threads(worker), log_path.read_text)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


@pytest.fixture(scope="module")
def baseline(target):
    """The server's thread count after a warm-up, and a check for the end."""
    for _ in range(3):
        _fresh_handshake(target)
    _wait_sessions_gone(target, 0)
    before = target.threads()
    yield before
    peak = target.threads()
    # sessions time out in about ping_interval + ping_timeout (2 s); the pool
    # threads a server keeps (gunicorn's 8, Werkzeug's none) and the handler
    # pool's 4 (started on first use: a timed-out session's disconnect) are
    # the tolerance
    _wait_sessions_gone(target, before + 12)
    print(f"server threads: {before} before, {peak} at the end of the run, "
          f"{target.threads()} once sessions timed out")


def _wait_sessions_gone(target: Target, limit: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    count = target.threads()
    while limit and count > limit:
        assert time.monotonic() < deadline, (
            f"server threads stayed at {count} (limit {limit}) for {timeout} s after the "
            f"fuzz run: a thread is left blocked\n{target.log()[-3000:]}")
        time.sleep(0.2)
        count = target.threads()


def _fresh_handshake(target: Target) -> str:
    response = requests.get(target.url + HANDSHAKE, timeout=20)
    assert response.status_code == 200 and response.text.startswith("0{"), (
        f"a fresh handshake got {response.status_code} {response.text[:100]!r}\n"
        f"{target.log()[-3000:]}")
    return json.loads(response.text[1:])["sid"]


# -- polling bodies -----------------------------------------------------------------
JSONISH = st.one_of(
    st.just('["echo",1]'), st.just('["echo",{"a":[1,2]}]'), st.just('["echo"'),
    st.just("[]"), st.just("[1,2]"), st.just("{}"), st.just('"x"'), st.just("null"),
    st.just('1-["echo",{"_placeholder":true,"num":0}]'),
    st.just('99999999999-["x"]'), st.just('/nope,["echo",1]'), st.just("12["),
    st.text(max_size=40),
)
SIO_PACKET = st.builds(lambda kind, body: kind + body,
                       st.sampled_from(["0", "1", "2", "3", "4", "5", "6", "7", "9", ""]),
                       JSONISH)
EIO_PACKET = st.one_of(
    st.builds(lambda p: "4" + p, SIO_PACKET),  # a Socket.IO packet in a MESSAGE
    st.builds(lambda k, t: k + t, st.sampled_from(["0", "1", "2", "3", "5", "6", "8", "x"]),
              st.text(max_size=20)),
    st.builds(lambda b: "b" + b, st.one_of(
        st.binary(max_size=30).map(lambda raw: base64.b64encode(raw).decode()),
        st.text(max_size=20))),
)
SEPARATOR = st.sampled_from(["\x1e", "\x1e\x1e", "", "\n", ":"])
POLL_BODY = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda parts, sep: sep.join(parts).encode("utf-8", "surrogatepass"),
              st.lists(EIO_PACKET, min_size=1, max_size=8), SEPARATOR),
    st.builds(lambda good, junk: good.encode() + junk,
              st.just("40\x1e42[\"echo\",1]\x1e"), st.sampled_from([b"\xff", b"\xc3(", b"\xed\xa0\x80"])),
    st.integers(MAX_BUFFER - 2, MAX_BUFFER + 50).map(lambda n: b"4" + b"2" * (n - 1)),
    st.just(("\x1e".join(["2"] * 10_001)).encode()),
)


@FUZZ
@given(body=POLL_BODY, connect_first=st.booleans())
def test_polling_payloads(target, baseline, body, connect_first):
    sid = _fresh_handshake(target)
    post = f"{target.url}{HANDSHAKE}&sid={sid}"
    if connect_first:
        assert requests.post(post, data=b"40", timeout=20).status_code == 200
    response = requests.post(post, data=body, timeout=20)
    assert response.status_code < 500, (
        f"POST {body[:80]!r} got {response.status_code} {response.text[:200]!r}\n"
        f"{target.log()[-3000:]}")
    if len(body) > MAX_BUFFER:
        assert response.status_code == 413, response.status_code
    _fresh_handshake(target)


# -- WebSocket frames ---------------------------------------------------------------
def _frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True,
           rsv: int = 0) -> bytes:
    head = bytes([(0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0x0F)])
    size = len(payload)
    bit = 0x80 if mask else 0
    if size < 126:
        head += bytes([bit | size])
    elif size < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def _ws_open(target: Target) -> socket.socket:
    host, port = target.url.split("//")[1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=20)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}"
                  f"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}"
                  f"\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed during the WebSocket handshake: {head!r}"
        head += chunk
    status = int(head.split()[1])
    assert status == 101, f"WebSocket handshake got {status}: {head[:300]!r}"
    return sock


def _drain(sock: socket.socket, seconds: float = 0.5) -> None:
    """Read what the server says for a moment (its close, its pings), then hang up."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except OSError:
        pass
    finally:
        sock.close()


OPCODES = st.sampled_from([0x0, 0x1, 0x2, 0x3, 0x7, 0x8, 0x9, 0xA, 0xB, 0xF])
WS_TEXT = st.one_of(st.builds(lambda p: "4" + p, SIO_PACKET).map(str.encode),
                    EIO_PACKET.map(lambda p: p.encode("utf-8", "surrogatepass")),
                    st.sampled_from([b"\xff\xfe", b"4\xc3(", b"42[\"echo\",\"\xed\xa0\x80\"]"]))
FRAME = st.one_of(
    st.builds(_frame, st.just(0x1), WS_TEXT),
    st.builds(_frame, OPCODES, st.binary(max_size=200), st.booleans(),
              st.sampled_from([True, True, True, False]), st.sampled_from([0, 0, 0, 1, 4, 7])),
    st.builds(lambda n: _frame(0x2, b"\0" * n), st.integers(MAX_BUFFER - 5, MAX_BUFFER + 500)),
    st.builds(lambda n: _frame(0x1, b"4" * n, fin=False) + _frame(0x0, b"2" * n),
              st.integers(MAX_BUFFER // 2 - 5, MAX_BUFFER // 2 + 10)),
)


@FUZZ
@given(frames=st.lists(FRAME, min_size=1, max_size=4), connect_first=st.booleans())
def test_websocket_frames(target, baseline, frames, connect_first):
    sock = _ws_open(target)
    try:
        if connect_first:
            sock.sendall(_frame(0x1, b"40"))
        for frame in frames:
            sock.sendall(frame)
    except OSError:
        pass  # the server may close on the first bad frame: that is fine
    _drain(sock)
    _fresh_handshake(target)
