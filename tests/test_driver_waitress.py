"""The waitress WebSocket hand-off driver (server/websocket/waitress.py), live.

waitress runs as a subprocess with 2 request threads.  The shared tests in
tests/driver_support/contract.py check the driver alone (a bare WSGI app
that calls detach/release and echoes with wsproto) and through the hand-off
core (python-engineio); the tests below are waitress's own.
"""
from __future__ import annotations

import base64
import os
import socket
from importlib.metadata import version

import pytest
import websocket
from wsproto.connection import Connection, ConnectionType
from wsproto.events import TextMessage

from tests.driver_support.contract import (  # noqa: F401 - collected by pytest
    ECHO_APP,
    EIO_APP,
    WAIT,
    test_connection_is_ours_alone,
    test_engineio_one_megabyte_binary_is_byte_exact,
    test_engineio_polling_then_upgrade,
    test_engineio_threads_are_freed,
    test_engineio_websocket_only,
    test_request_threads_are_freed,
    test_server_writes_nothing_on_the_connection,
    test_sigterm_exits_in_bounded_time,
)
from tests.driver_support.servers import LiveServer

pytestmark = pytest.mark.live

#: waitress versions whose internals server/websocket/waitress.py was checked
#: against: environ['waitress.client_disconnected'] is a bound method of the
#: HTTPChannel; channel.socket, channel.adj.channel_request_lookahead,
#: channel.requests_lock and channel.request (a partly read next request);
#: a channel with a request in progress is neither read nor written by the
#: main loop; wasyncore's dispatcher.send treats EPIPE as a vanished client
#: (close, no log); nothing calls shutdown().
VERIFIED_WAITRESS = ("3.0.2",)


@pytest.fixture(scope="module")
def server_kind():
    return "waitress"


@pytest.fixture(scope="module")
def echo_server():
    server = LiveServer("waitress", ECHO_APP, driver="waitress")
    try:
        yield server.wait_ready()
    finally:
        server.close()


@pytest.fixture(scope="module")
def eio_server():
    server = LiveServer("waitress", EIO_APP)
    try:
        yield server.wait_ready()
    finally:
        server.close()


def test_waitress_version_is_verified():
    installed = version("waitress")
    assert installed in VERIFIED_WAITRESS, (
        f"waitress {installed} is not a version the hand-off driver was verified against "
        f"{VERIFIED_WAITRESS}: re-read what VERIFIED_WAITRESS in {__file__} names in "
        f"waitress's task.py, channel.py and wasyncore.py, run this file, then add it")


def test_request_lookahead_is_refused_with_the_setting_named():
    server = LiveServer("waitress", ECHO_APP, driver="waitress",
                        extra=("--channel-request-lookahead=1",))
    try:
        server.wait_ready()
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(f"ws://127.0.0.1:{server.port}/echo", timeout=WAIT)
        assert refused.value.status_code == 400, f"expected HTTP 400, got {refused.value!r}"
        reason = refused.value.resp_body.decode()
        assert "channel_request_lookahead=1" in reason and "=0" in reason, \
            f"the refusal should name the setting, its value and the fix, got {reason!r}"
        assert server.get("/ping") == b"pong"  # the server is fine otherwise
    finally:
        server.close()


def test_a_frame_sent_before_the_101_is_never_lost_silently(echo_server):
    # a client that does not wait for the 101: if waitress read the frame
    # along with the request, the hand-off is refused (400 with the reason);
    # if not, the frame is still in the connection and gets echoed
    client = Connection(ConnectionType.CLIENT)
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", echo_server.port), timeout=WAIT) as s:
        s.sendall(f"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
                  + client.send(TextMessage(data="early")))
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = s.recv(65536)
            assert chunk, f"connection closed after {received!r}"
            received += chunk
        head, _, rest = received.partition(b"\r\n\r\n")
        if head.startswith(b"HTTP/1.1 400"):
            assert b"before the 101" in rest or b"before the 101" in s.recv(65536), \
                f"a refusal should say why, got {received!r}"
            return
        assert head.startswith(b"HTTP/1.1 101"), f"expected 101 or 400, got {head!r}"
        while True:
            client.receive_data(rest)
            events = list(client.events())
            if events:
                break
            rest = s.recv(65536)
            assert rest, "connection closed before the early frame was echoed"
        assert isinstance(events[0], TextMessage) and events[0].data == "early", \
            f"expected the early frame echoed, got {events!r}"
