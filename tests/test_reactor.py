"""The reactor: WebSockets served by events, no thread per connection."""
import socket
import threading
import time

import pytest
import socketio as sio_client
from flask import Flask

from server import SocketIO
from server.websocket import evented
from server.websocket.reactor import Reactor
from tests.livesupport import serve_in_thread

WAIT = 15


def test_call_soon_and_call_later_run_on_the_reactor_thread_in_order():
    reactor = Reactor(name="test-reactor")
    ran = []
    done = threading.Event()
    try:
        reactor.call_later(0.2, lambda: (ran.append(("late", reactor.in_loop())), done.set()))
        reactor.call_later(0.05, lambda: ran.append(("early", reactor.in_loop())))
        cancelled = reactor.call_later(0.1, lambda: ran.append(("cancelled", True)))
        cancelled.cancel()
        reactor.call_soon(lambda: ran.append(("soon", reactor.in_loop())))
        assert done.wait(WAIT), f"the timers did not fire: {ran}"
        assert ran == [("soon", True), ("early", True), ("late", True)], ran
        assert not reactor.in_loop()
    finally:
        reactor.stop()


def test_a_failing_callback_does_not_stop_the_reactor():
    reactor = Reactor(name="test-reactor")
    after = threading.Event()
    try:
        reactor.call_soon(lambda: 1 / 0)
        reactor.call_soon(after.set)
        assert after.wait(WAIT), "the reactor stopped after a failing callback"
    finally:
        reactor.stop()


def _app(**options):
    app = Flask(__name__)
    socketio = SocketIO(app, **options)
    release = threading.Event()
    seen = []

    @socketio.on("echo")
    def echo(x):
        return x

    @socketio.on("block")
    def block():
        release.wait(WAIT)
        return "released"

    @socketio.on("count")
    def count(i):
        seen.append(i)

    @socketio.on("flood")
    def flood(n, size):
        for _ in range(n):
            socketio.emit("blob", "x" * size, to=socketio_request_sid())

    app.release, app.seen = release, seen
    return app, socketio


def socketio_request_sid():
    from flask import request
    return request.sid


def _connect(url, transports=("websocket",)):
    client = sio_client.Client(reconnection=False)
    client.connect(url, transports=list(transports), wait_timeout=WAIT)
    return client


@pytest.mark.parametrize("websocket_io", ["events", "threads"])
def test_both_websocket_modes_echo_over_websocket_and_upgrade(websocket_io):
    app, socketio = _app(websocket_io=websocket_io)
    with serve_in_thread(app) as url:
        for transports in (("websocket",), ("polling", "websocket")):
            client = _connect(url, transports)
            try:
                deadline = time.monotonic() + WAIT
                while client.transport() != "websocket" and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert client.transport() == "websocket", (websocket_io, transports)
                for i in range(20):
                    assert client.call("echo", i, timeout=WAIT) == i
            finally:
                client.disconnect()


def _server_threads():
    # python-socketio clients run threads in this process too: count only the
    # server's (hand-off readers, reactors, pooled handlers)
    return sorted(t.name for t in threading.enumerate()
                  if t.name.startswith(("websocket-fd", "engineio-reactor", "handler-")))


def test_open_websockets_hold_no_thread_each():
    app, socketio = _app(handler_threads=4)
    with serve_in_thread(app) as url:
        warm = _connect(url)
        assert warm.call("echo", 0, timeout=WAIT) == 0  # pool and reactor started
        before = _server_threads()
        clients = [_connect(url) for _ in range(20)]
        try:
            for i, client in enumerate(clients):
                assert client.call("echo", i, timeout=WAIT) == i
            after = _server_threads()
            assert after == before, f"20 open WebSockets started threads: {before} -> {after}"
            assert not any(n.startswith("websocket-fd") for n in after), after
        finally:
            for client in clients:
                client.disconnect()
            warm.disconnect()


def test_a_full_pool_pauses_the_client_instead_of_dropping_its_events():
    app, socketio = _app(handler_threads=1, handler_queue=2, event_rate=None)
    with serve_in_thread(app) as url:
        client = _connect(url)
        try:
            client.emit("block")
            for i in range(200):
                client.emit("count", i)
            time.sleep(0.5)  # let the reader hit the bound (nothing to wait on)
            assert socketio.server.handler_pool.pending <= 2 + 200
            app.release.set()
            assert client.call("echo", "last", timeout=WAIT) == "last"
            assert app.seen == list(range(200)), \
                f"expected all 200 events in order, got {len(app.seen)}: {app.seen[:10]}..."
            assert socketio.server.stats.events_dropped == 0
        finally:
            app.release.set()
            client.disconnect()


def test_a_client_that_stops_reading_is_cut_and_others_carry_on(monkeypatch):
    monkeypatch.setattr(evented, "MAX_BUFFERED", 256 * 1024)
    app, socketio = _app(handler_threads=4)
    with serve_in_thread(app) as url:
        healthy = _connect(url)
        # a raw WebSocket client that never reads what it is sent
        port = int(url.rsplit(":", 1)[1])
        stuck = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.sendall(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                      b"Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      b"Sec-WebSocket-Version: 13\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += stuck.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        try:
            # Socket.IO connect, then ask for 4 MiB in 1 KiB messages (masked frames)
            for text in ("40", '42["flood",4096,1024]'):
                payload = text.encode()
                mask = b"\x01\x02\x03\x04"
                stuck.sendall(bytes([0x81, 0x80 | len(payload)]) + mask
                              + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
            for i in range(20):
                assert healthy.call("echo", i, timeout=WAIT) == i, "a healthy client stalled"
            deadline = time.monotonic() + WAIT
            while socketio.server.eio.websockets.count() > 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert socketio.server.eio.websockets.count() == 1, \
                "the client that stopped reading should have been cut"
        finally:
            stuck.close()
            healthy.disconnect()


def test_a_stopped_reactor_starts_again_on_next_use():
    reactor = Reactor(name="test-reactor")
    first, second = threading.Event(), threading.Event()
    reactor.call_soon(first.set)
    assert first.wait(WAIT)
    reactor.stop()
    reactor.call_soon(second.set)
    try:
        assert second.wait(WAIT), "a call after stop() never ran"
    finally:
        reactor.stop()
