"""The Flask-SocketIO API through the in-memory test client."""
import threading

import pytest
from flask import Flask

from server import SocketIO
from tests.chat_app import create_app, create_wildcard_app


@pytest.fixture
def chat():
    app, socketio = create_app()
    return app, socketio


def test_connect_with_auth_and_echo(chat):
    app, socketio = chat
    client = socketio.test_client(app, auth={"token": "t1"})
    assert client.is_connected()
    assert app.state["connects"][-1]["auth"] == {"token": "t1"}
    assert client.emit("echo", {"a": 1}, callback=True) == {"a": 1}
    assert client.emit("echo", 1, 2, callback=True) == [1, 2]


def test_connect_without_auth_passes_none(chat):
    app, socketio = chat
    socketio.test_client(app)
    assert app.state["connects"][-1]["auth"] is None


def test_connect_refused_with_error_args(chat):
    app, socketio = chat
    client = socketio.test_client(app, auth={"refuse": "banned"})
    assert not client.is_connected()
    assert client.connect_errors["/"] == {"message": "refused", "data": {"why": "banned"}}


def test_connect_return_false_rejects(chat):
    app, socketio = chat
    client = socketio.test_client(app, auth={"reject": True})
    assert not client.is_connected()


def test_request_context_values(chat):
    app, socketio = chat
    client = socketio.test_client(app)
    info = client.emit("whoami", callback=True)
    assert info["namespace"] == "/"
    assert info["event"] == "whoami"
    assert info["sid"] == socketio.server.manager.sid_from_eio_sid(client.eio_sid, "/")


def test_emit_back_and_get_received(chat):
    app, socketio = chat
    client = socketio.test_client(app)
    client.emit("emit_back", {"x": 1})
    assert client.get_received() == [{"name": "back", "args": [{"x": 1}], "namespace": "/"}]
    assert client.get_received() == []


def test_send_text_and_json(chat):
    app, socketio = chat
    client = socketio.test_client(app)
    client.send("hello")
    client.send({"k": "v"}, json=True)
    received = client.get_received()
    assert received == [
        {"name": "message", "args": "got hello", "namespace": "/"},
        {"name": "json", "args": {"got": {"k": "v"}}, "namespace": "/"},
    ]


def test_rooms_and_isolation(chat):
    app, socketio = chat
    a, b, c = (socketio.test_client(app) for _ in range(3))
    sid_a = socketio.server.manager.sid_from_eio_sid(a.eio_sid, "/")
    assert a.emit("join", "red", callback=True) == sorted(["red", sid_a])
    b.emit("join", "red", callback=True)
    c.emit("join", "blue", callback=True)
    for client in (a, b, c):
        client.get_received()
    a.emit("to_room", "red", "hi reds")
    assert [m["args"] for m in a.get_received()] == [["hi reds"]]
    assert [m["args"] for m in b.get_received()] == [["hi reds"]]
    assert c.get_received() == []
    a.emit("to_room_not_me", "red", "not me")
    assert a.get_received() == []
    assert [m["args"] for m in b.get_received()] == [["not me"]]
    assert socketio.participants("red") and len(socketio.participants("red")) == 2
    b.emit("leave", "red", callback=True)
    a.emit("to_room", "red", "after leave")
    assert b.get_received() == []
    assert [m["args"] for m in a.get_received()] == [["after leave"]]
    a.emit("close", "red")
    assert socketio.participants("red") == []
    a.emit("to_room", "red", "after close")
    assert a.get_received() == []


def test_broadcast_reaches_everyone(chat):
    app, socketio = chat
    clients = [socketio.test_client(app) for _ in range(5)]
    clients[0].emit("broadcast", "all")
    for client in clients:
        assert client.get_received() == [{"name": "bcast", "args": ["all"], "namespace": "/"}]


def test_server_emit_outside_context_and_from_http(chat):
    app, socketio = chat
    client = socketio.test_client(app)
    socketio.emit("server_event", {"n": 1})
    with app.test_client() as http:
        assert http.get("/emit-from-http").data == b"sent"
    names = [m["name"] for m in client.get_received()]
    assert names == ["server_event", "from_http"]


def test_server_emit_with_skip_sid_list_and_to_list(chat):
    app, socketio = chat
    a, b, c = (socketio.test_client(app) for _ in range(3))
    sid = lambda cl: socketio.server.manager.sid_from_eio_sid(cl.eio_sid, "/")  # noqa: E731
    socketio.emit("x", 1, skip_sid=[sid(a), sid(b)])
    assert (a.get_received(), b.get_received()) == ([], [])
    assert len(c.get_received()) == 1
    socketio.emit("y", 2, to=[sid(a), sid(b)])
    assert len(a.get_received()) == 1 and len(b.get_received()) == 1
    assert c.get_received() == []


def test_disconnect_from_server_and_reason(chat):
    app, socketio = chat
    client = socketio.test_client(app)
    client.emit("kick")
    assert not client.is_connected()
    assert app.state["disconnects"][-1][1] == SocketIO.reason.SERVER_DISCONNECT


def test_client_disconnect_reason(chat):
    app, socketio = chat
    client = socketio.test_client(app)
    client.disconnect()
    assert app.state["disconnects"][-1][1] == SocketIO.reason.CLIENT_DISCONNECT
    with pytest.raises(RuntimeError):
        client.disconnect()


def test_error_handler_gets_exception_and_acks_its_value(chat):
    app, socketio = chat
    client = socketio.test_client(app)
    assert client.emit("boom", callback=True) == {"error": "boom!"}
    assert app.state["errors"] == ["ValueError('boom!')"]


def test_default_error_handler():
    app = Flask(__name__)
    socketio = SocketIO(app)
    seen = []

    @socketio.on("fail", namespace="/x")
    def fail():
        raise KeyError("k")

    @socketio.on_error_default
    def default(e):
        seen.append(type(e).__name__)
        return "handled"

    client = socketio.test_client(app, namespace="/x")
    assert client.emit("fail", namespace="/x", callback=True) == "handled"
    assert seen == ["KeyError"]


def test_catch_all_event(chat):
    app, socketio = chat
    client = socketio.test_client(app)
    assert client.emit("unknown_event", 1, 2, callback=True) == {"caught": "unknown_event"}
    assert app.state["catch_all"] == [("unknown_event", (1, 2))]


def test_managed_session_is_a_per_connection_copy(chat):
    app, socketio = chat
    with app.test_client() as http:
        http.get("/set/from-http")
        client = socketio.test_client(app, flask_test_client=http)
        assert client.emit("session_get", callback=True) == "from-http"
        client.emit("session_set", "from-socket")
        assert client.emit("session_get", callback=True) == "from-socket"
        # the HTTP session is not changed by Socket.IO handlers
        assert http.get("/get").data == b"from-http"


def test_unmanaged_session_saves_through_flask():
    app, socketio = create_app(manage_session=False)
    with app.test_client() as http:
        http.get("/set/v1")
        client = socketio.test_client(app, flask_test_client=http)
        assert client.emit("session_get", callback=True) == "v1"


def test_class_based_namespace(chat):
    app, socketio = chat
    client = socketio.test_client(app, namespace="/chat")
    assert client.is_connected("/chat")
    assert client.get_received("/chat") == [
        {"name": "welcome", "args": [{"ns": "/chat"}], "namespace": "/chat"}]
    assert client.emit("say", "hi", namespace="/chat", callback=True) == "ok"
    assert client.get_received("/chat")[0]["args"] == ["hi"]
    client.disconnect(namespace="/chat")
    assert app.state["disconnects"][-1][1] == SocketIO.reason.CLIENT_DISCONNECT


@pytest.mark.parametrize("class_based", [False, True], ids=["functions", "Namespace('*')"])
def test_catch_all_namespace(class_based):
    app, socketio = create_wildcard_app(class_based=class_based)
    client = socketio.test_client(app, namespace="/anything", auth={"k": 1})
    assert client.is_connected("/anything")
    assert app.state["connects"][-1]["namespace"] == "/anything"
    assert app.state["connects"][-1]["auth"] == {"k": 1}
    reply = client.emit("ping_any", 5, namespace="/anything", callback=True)
    assert reply["namespace"] == "/anything" and reply["data"] == 5
    if class_based:
        assert app.state["connects"][-1]["request_ns"] == "/anything"
        assert client.get_received("/anything") == [
            {"name": "pong_any", "args": [{"namespace": "/anything"}], "namespace": "/anything"}]
    else:
        assert client.emit("other", 1, namespace="/anything", callback=True) == {
            "event": "other", "namespace": "/anything", "args": [1]}


def test_background_task_emits_reach_client(chat):
    app, socketio = chat
    client = socketio.test_client(app)
    client.emit("start_task", 20)
    done = threading.Event()

    def wait():
        while len([m for m in client.queue if m["name"] == "tick"]) < 20:
            socketio.sleep(0.01)
        done.set()

    socketio.start_background_task(wait)
    assert done.wait(10), f"expected 20 ticks, got {client.queue!r}"
    assert [m["args"][0] for m in client.get_received()] == list(range(20))


def test_several_clients_are_independent(chat):
    app, socketio = chat
    a = socketio.test_client(app)
    b = socketio.test_client(app)
    a.emit("emit_back", "for a")
    assert b.get_received() == []
    assert a.get_received()[0]["args"] == ["for a"]


def test_emit_with_callback_runs_in_request_context(chat):
    """The ack callback of an emit made in a handler sees the client's sid."""
    app, socketio = chat
    client = socketio.test_client(app)
    client.emit("emit_with_ack")
    received = client.get_received()
    assert received[0]["name"] == "needs_ack"


def test_server_emit_accepts_legacy_broadcast_flag(chat):
    app, socketio = chat
    a, b = socketio.test_client(app), socketio.test_client(app)
    socketio.emit("legacy", 1, broadcast=True)
    assert len(a.get_received()) == 1 and len(b.get_received()) == 1


def test_admin_ui_instrumentation_and_session_helpers(chat):
    app, socketio = chat
    socketio.instrument(auth=False)
    admin = socketio.test_client(app, namespace="/admin")
    assert admin.is_connected("/admin")
    client = socketio.test_client(app)
    sid = socketio.server.manager.sid_from_eio_sid(client.eio_sid, "/")
    with socketio.session(sid) as sess:
        sess["k"] = "v"
    assert socketio.get_session(sid) == {"k": "v"}
    assert sid in socketio.rooms(sid)


def test_shutdown_is_idempotent(chat):
    app, socketio = chat
    socketio.test_client(app)
    socketio.shutdown()
    socketio.shutdown()  # a second hook on the way out must not fail


def test_url_for_works_in_handlers_without_matching_the_socketio_url():
    from flask import url_for

    app = Flask(__name__)
    socketio = SocketIO(app)

    @app.route("/page/<int:n>")
    def page(n):
        return str(n)

    @socketio.on("link")
    def link(n):
        from flask import request
        # the event's URL is the Socket.IO endpoint, which is never matched
        return {"url": url_for("page", n=n), "rule": request.url_rule}

    client = socketio.test_client(app)
    assert client.emit("link", 7, callback=True) == {"url": "/page/7", "rule": None}
