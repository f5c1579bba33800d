"""The waitress WebSocket hand-off driver (server/websocket/waitress.py), live.

waitress runs as a subprocess with 2 request threads.  The shared tests in
tests/driver_support/contract.py check the driver alone (a bare WSGI app
that calls detach/release and echoes with wsproto) and through the hand-off
core (python-engineio); the tests below are waitress's own.
"""
from __future__ import annotations

from importlib.metadata import version

import pytest
import websocket

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
