"""The public names and signatures we promise to share with Flask-SocketIO 5.x."""
import inspect

import server
from server import Namespace, SocketIO, SocketIOTestClient

# Flask-SocketIO 5.7.0's documented signatures: (parameter, default) in order.
# Ours must start with exactly these; keyword parameters may follow.
E = inspect.Parameter.empty
FLASK_SOCKETIO = {
    (SocketIO, "__init__"): [("self", E), ("app", None), ("**kwargs", E)],
    (SocketIO, "init_app"): [("self", E), ("app", E), ("**kwargs", E)],
    (SocketIO, "on"): [("self", E), ("message", E), ("namespace", None)],
    (SocketIO, "on_error"): [("self", E), ("namespace", None)],
    (SocketIO, "on_error_default"): [("self", E), ("exception_handler", E)],
    (SocketIO, "on_event"): [("self", E), ("message", E), ("handler", E), ("namespace", None)],
    (SocketIO, "event"): [("self", E), ("*args", E), ("**kwargs", E)],
    (SocketIO, "on_namespace"): [("self", E), ("namespace_handler", E)],
    (SocketIO, "emit"): [("self", E), ("event", E), ("*args", E), ("**kwargs", E)],
    (SocketIO, "call"): [("self", E), ("event", E), ("*args", E), ("**kwargs", E)],
    (SocketIO, "send"): [("self", E), ("data", E), ("json", False), ("namespace", None),
                         ("to", None), ("callback", None), ("include_self", True),
                         ("skip_sid", None), ("**kwargs", E)],
    (SocketIO, "close_room"): [("self", E), ("room", E), ("namespace", None)],
    (SocketIO, "run"): [("self", E), ("app", E), ("host", None), ("port", None),
                        ("**kwargs", E)],
    (SocketIO, "stop"): [("self", E)],
    (SocketIO, "start_background_task"): [("self", E), ("target", E), ("*args", E),
                                          ("**kwargs", E)],
    (SocketIO, "sleep"): [("self", E), ("seconds", 0)],
    (SocketIO, "test_client"): [("self", E), ("app", E), ("namespace", None),
                                ("query_string", None), ("headers", None), ("auth", None),
                                ("flask_test_client", None)],
    (server, "emit"): [("event", E), ("*args", E), ("**kwargs", E)],
    (server, "send"): [("message", E), ("**kwargs", E)],
    (server, "call"): [("event", E), ("*args", E), ("**kwargs", E)],
    (server, "join_room"): [("room", E), ("sid", None), ("namespace", None)],
    (server, "leave_room"): [("room", E), ("sid", None), ("namespace", None)],
    (server, "close_room"): [("room", E), ("namespace", None)],
    (server, "rooms"): [("sid", None), ("namespace", None)],
    (server, "disconnect"): [("sid", None), ("namespace", None), ("silent", False)],
    (Namespace, "__init__"): [("self", E), ("namespace", None)],
    (Namespace, "trigger_event"): [("self", E), ("event", E), ("*args", E)],
    (Namespace, "emit"): [("self", E), ("event", E), ("data", None), ("room", None),
                          ("include_self", True), ("namespace", None), ("callback", None)],
    (Namespace, "send"): [("self", E), ("data", E), ("room", None), ("include_self", True),
                          ("namespace", None), ("callback", None)],
    (Namespace, "close_room"): [("self", E), ("room", E), ("namespace", None)],
    (SocketIOTestClient, "__init__"): [("self", E), ("app", E), ("socketio", E),
                                       ("namespace", None), ("query_string", None),
                                       ("headers", None), ("auth", None),
                                       ("flask_test_client", None)],
    (SocketIOTestClient, "is_connected"): [("self", E), ("namespace", None)],
    (SocketIOTestClient, "connect"): [("self", E), ("namespace", None), ("query_string", None),
                                      ("headers", None), ("auth", None)],
    (SocketIOTestClient, "disconnect"): [("self", E), ("namespace", None)],
    (SocketIOTestClient, "emit"): [("self", E), ("event", E), ("*args", E), ("**kwargs", E)],
    (SocketIOTestClient, "send"): [("self", E), ("data", E), ("json", False),
                                   ("callback", False), ("namespace", None)],
    (SocketIOTestClient, "get_received"): [("self", E), ("namespace", None)],
}


def _describe(func):
    out = []
    for p in inspect.signature(func).parameters.values():
        name = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        out.append((name, p.default))
    return out


def test_all_is_literal_and_complete():
    assert server.__all__ == [
        "SocketIO", "Namespace", "SocketIOTestClient", "emit", "send", "call", "join_room",
        "leave_room", "close_room", "rooms", "disconnect", "ConnectionRefusedError",
        "TimeoutError", "ConfigurationError"]
    for name in server.__all__:
        assert hasattr(server, name), name


def test_signatures_match_flask_socketio():
    mismatches = []
    for (owner, name), expected in FLASK_SOCKETIO.items():
        ours = _describe(getattr(owner, name))
        # positional prefix must match exactly; extra parameters only as keywords
        head = [p for p in ours if not p[0].startswith("**")][:len(
            [e for e in expected if not e[0].startswith("**")])]
        want = [e for e in expected if not e[0].startswith("**")]
        if head != want:
            mismatches.append(f"{getattr(owner, '__name__', owner)}.{name}: "
                              f"expected {want}, got {head}")
        if any(e[0].startswith("**") for e in expected) and not any(
                p[0].startswith("**") for p in ours):
            mismatches.append(f"{name}: expected **kwargs")
    assert mismatches == []


def test_reason_constants_are_python_socketio_s():
    assert SocketIO.reason.CLIENT_DISCONNECT == "client disconnect"
    assert SocketIO.reason.SERVER_DISCONNECT == "server disconnect"


def test_connection_refused_error_is_python_socketio_s():
    import socketio

    assert server.ConnectionRefusedError is socketio.exceptions.ConnectionRefusedError
    assert server.TimeoutError is socketio.exceptions.TimeoutError


def test_no_green_thread_libraries_are_imported():
    import sys

    assert "eventlet" not in sys.modules and "gevent" not in sys.modules
    assert "flask_socketio" not in sys.modules
