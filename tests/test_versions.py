"""Pins the dependency versions whose internals the core relies on.

If one of these fails after an upgrade, re-verify the listed internals
against the new version's source, then extend the tuple.
"""
import inspect
import re
from importlib.metadata import version

import engineio
import socketio
from flask.ctx import RequestContext
from flask.testing import FlaskClient

# internals we use -> where
ENGINEIO_TESTED = ("4.15.1",)
SOCKETIO_TESTED = ("5.18.1",)
WEBSOCKET_CLIENT_TESTED = ("1.9.2",)



def _minor(v):
    return tuple(int(x) for x in v.split(".")[:2])


def test_python_engineio_version_and_internals():
    v = version("python-engineio")
    assert _minor(v) in {_minor(t) for t in ENGINEIO_TESTED}, (
        f"python-engineio {v} is untested: re-verify server/engine.py (_handle_connect "
        f"mirrors engineio.Server._handle_connect; per-instance _async) and "
        f"server/engine_socket.py (Socket.poll/close/handle_post_request; schedule_ping, "
        f"send and _upgrade_websocket overridden; the probe/upgrade protocol of "
        f"Socket._websocket_handler mirrored in on_websocket_message)")
    server = engineio.Server(async_mode="threading")
    assert {"thread", "queue", "queue_empty", "event", "websocket", "sleep"} <= set(server._async)
    for name in ("_handle_connect", "_upgrades", "_ok", "_unauthorized", "_bad_request",
                 "_generate_sid_cookie", "_trigger_event", "_service_task"):
        assert callable(getattr(server, name)), name
    params = list(inspect.signature(engineio.Server._handle_connect).parameters)
    assert params == ["self", "environ", "start_response", "transport", "jsonp_index"]
    assert engineio.payload.Payload.max_decode_packets == 16
    # the session methods the reactor path replaces or relies on (read from the
    # module's file: python-socketio's Admin UI, once instrumented, replaces
    # some of them on the class for the rest of the process)
    socket_src = inspect.getsource(engineio.socket)
    for name in ("def schedule_ping", "def _send_ping", "def _upgrade_websocket",
                 "def _websocket_handler", "def check_ping_timeout"):
        assert name in socket_src, name
    assert "'probe'" in socket_src and "packet.UPGRADE" in socket_src
    # server/extension.py _SocketIOMiddleware.__call__ replaces WSGIApp.__call__
    # (its eventlet shim made a class per request): the routing it keeps
    wsgi_call = inspect.getsource(engineio.WSGIApp.__call__)
    for name in ("eventlet.input", "self.engineio_path", "self.engineio_app.handle_request",
                 "self.wsgi_app(environ, start_response)"):
        assert name in wsgi_call, name


def test_python_socketio_version_and_internals():
    v = version("python-socketio")
    assert _minor(v) in {_minor(t) for t in SOCKETIO_TESTED}, (
        f"python-socketio {v} is untested: re-verify server/sio.py (_send_packet, "
        f"_send_eio_packet called once per part by Manager.emit, _handle_event, "
        f"_handle_event_internal, _handle_eio_connect/_message/_disconnect; call() "
        f"passing its waiter to emit(callback=...) and Manager.callbacks[sid][id])")
    src = inspect.getsource(socketio.Manager.emit)
    assert "_send_eio_packet" in src and "_send_packet" in src
    # the reactor runs call()'s ack waiter in place (server/sio.py _ack_wakes_waiter)
    assert "callback=event_callback" in inspect.getsource(socketio.Server.call)
    # server/admin_ui.py: what the Admin UI patches on engineio's Socket (and so
    # misses on our paths), and the InstrumentedServer attributes we feed
    from socketio import admin

    patches = inspect.getsource(admin.InstrumentedServer.instrument)
    for name in ("Socket.handle_post_request =", "Socket._websocket_handler =",
                 "Socket._send_ping ="):
        assert name in patches, name
    init = inspect.getsource(admin.InstrumentedServer.__init__) + patches
    for name in ("self.event_buffer", "self.admin_namespace", "self.mode", "self.sio"):
        assert name in init, name
    assert list(inspect.signature(admin.InstrumentedServer.serialize_socket).parameters) == \
        ["self", "sid", "namespace", "eio_sid"]
    assert "'socket_connected'" in inspect.getsource(admin.InstrumentedServer._eio_send_ping)
    assert "self.callbacks[sid][id] = callback" in inspect.getsource(
        socketio.base_manager.BaseManager._generate_ack_id)
    for name in ("_send_packet", "_send_eio_packet", "_handle_event", "_handle_event_internal",
                 "_handle_eio_connect", "_handle_eio_message", "_handle_eio_disconnect",
                 "_engineio_server_class"):
        assert callable(getattr(socketio.Server, name)), name
    # server/room_index.py: every change to Manager.rooms goes through the basic_*
    # methods it extends, and basic_disconnect's tail is the one it mirrors
    base = socketio.base_manager.BaseManager
    writes = re.compile(r"self\.rooms\[.*\]\s*=[^=]|del self\.rooms\[")
    writers = sorted(name for cls in (base, socketio.Manager, socketio.PubSubManager)
                     for name, fn in vars(cls).items()
                     if inspect.isfunction(fn) and writes.search(inspect.getsource(fn)))
    assert writers == ["__init__", "basic_enter_room", "basic_leave_room"], writers
    tail = inspect.getsource(base.basic_disconnect)
    for line in ("del self.callbacks[sid]", "self.pending_connect[namespace].remove(sid)",
                 "self.pending_disconnect[namespace].remove(sid)"):
        assert line in tail, line


def test_flask_internals():
    v = version("flask")
    assert "session" in inspect.signature(RequestContext).parameters, (
        f"Flask {v}: RequestContext(session=...) is how the managed session is installed")
    assert callable(getattr(RequestContext, "match_request", None)), (
        f"Flask {v}: the event context skips URL matching by overriding match_request")
    assert callable(getattr(FlaskClient, "_add_cookies_to_wsgi", None)), (
        f"Flask {v}: the test client injects cookies with FlaskClient._add_cookies_to_wsgi")


def test_websocket_client_version_and_internals():
    """server/tls_client.py overrides websocket-client's WebSocket._send/_recv."""
    import websocket

    v = version("websocket-client")
    assert _minor(v) in {_minor(t) for t in WEBSOCKET_CLIENT_TESTED}, (
        f"websocket-client {v} is untested: re-verify server/tls_client.py (every read "
        f"goes through WebSocket._recv, every write through WebSocket._send, both on "
        f"self.sock; _recv's end-of-stream handling; settimeout sets self.sock's timeout)")
    init_src = inspect.getsource(websocket.WebSocket.__init__)
    assert "frame_buffer(self._recv" in init_src
    assert "self.dispatcher" in inspect.getsource(websocket.WebSocket._send)
    for name in ("_send", "_recv", "settimeout"):
        assert callable(getattr(websocket.WebSocket, name)), name
    # python-engineio's client passes websocket_extra_options to create_connection
    assert "websocket_extra_options" in inspect.getsource(engineio.Client._connect_websocket)
    assert "class_" in inspect.signature(websocket.create_connection).parameters
