"""A small application exercising the whole Flask-SocketIO API.

Used by the in-process tests (through the test client) and by the
real-HTTP tests (served on 127.0.0.1 and driven by python-socketio's Client).
"""
from __future__ import annotations

import threading

from flask import Flask, request, session

from server import (
    ConnectionRefusedError,
    Namespace,
    SocketIO,
    call,
    close_room,
    disconnect,
    emit,
    join_room,
    leave_room,
    rooms,
    send,
)


def create_app(**options):
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "test-secret"
    socketio = SocketIO(app, **options)
    state = {"connects": [], "disconnects": [], "errors": [], "acks": [],
             "disconnected": threading.Event(), "catch_all": []}
    app.state = state

    @app.route("/set/<value>")
    def set_session(value):
        session["value"] = value
        return "ok"

    @app.route("/get")
    def get_session():
        return session.get("value", "")

    @app.route("/emit-from-http")
    def emit_from_http():
        socketio.emit("from_http", {"n": 1})
        return "sent"

    @socketio.on("connect")
    def on_connect(auth):
        if auth and auth.get("refuse"):
            raise ConnectionRefusedError("refused", {"why": auth["refuse"]})
        if auth and auth.get("reject"):
            return False
        state["connects"].append({"sid": request.sid, "auth": auth,
                                  "namespace": request.namespace})
        return None

    @socketio.on("disconnect")
    def on_disconnect(reason):
        state["disconnects"].append((request.sid, reason))
        state["disconnected"].set()

    @socketio.on("echo")
    def on_echo(*args):
        return args if len(args) != 1 else args[0]

    @socketio.on("whoami")
    def whoami():
        return {"sid": request.sid, "namespace": request.namespace,
                "event": request.event["message"]}

    @socketio.on("emit_back")
    def emit_back(data):
        emit("back", data)

    @socketio.on("join")
    def on_join(room):
        join_room(room)
        return sorted(rooms())

    @socketio.on("leave")
    def on_leave(room):
        leave_room(room)
        return sorted(rooms())

    @socketio.on("to_room")
    def to_room(room, data):
        emit("room_msg", data, to=room)

    @socketio.on("to_room_not_me")
    def to_room_not_me(room, data):
        emit("room_msg", data, to=room, include_self=False)

    @socketio.on("broadcast")
    def on_broadcast(data):
        emit("bcast", data, broadcast=True)

    @socketio.on("close")
    def on_close(room):
        close_room(room)

    @socketio.on("send_text")
    def send_text(text):
        send(text)

    @socketio.on("send_json")
    def send_json(obj):
        send(obj, json=True)

    @socketio.on("message")
    def on_message(msg):
        send("got " + str(msg))

    @socketio.on("json")
    def on_json(obj):
        send({"got": obj}, json=True)

    @socketio.on("kick")
    def kick():
        disconnect()

    @socketio.on("boom")
    def boom():
        raise ValueError("boom!")

    @socketio.on("session_set")
    def session_set(value):
        session["value"] = value

    @socketio.on("session_get")
    def session_get():
        return session.get("value")

    @socketio.on("ask_client")
    def ask_client():
        return call("question", {"q": 1}, timeout=5)

    @socketio.on("emit_with_ack")
    def emit_with_ack():
        def got(*args):
            state["acks"].append({"args": args, "sid": request.sid})
        emit("needs_ack", {"x": 1}, callback=got)

    @socketio.on("start_task")
    def start_task(n):
        sid = request.sid

        def task():
            for i in range(n):
                socketio.emit("tick", i, to=sid)
        socketio.start_background_task(task)

    @socketio.on_error()
    def on_error(e):
        state["errors"].append(repr(e))
        return {"error": str(e)}

    @socketio.on("*")
    def catch_all(event, *args):
        state["catch_all"].append((event, args))
        return {"caught": event}

    class Chat(Namespace):
        def on_connect(self):
            emit("welcome", {"ns": request.namespace})

        def on_say(self, data):
            self.emit("said", data, to=request.sid)
            return "ok"

        def on_disconnect(self, reason):
            state["disconnects"].append((request.sid, reason))

    socketio.on_namespace(Chat("/chat"))

    return app, socketio


def create_wildcard_app(class_based: bool = False, **options):
    """Catch-all namespaces: function handlers, or a ``Namespace('*')``."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "test-secret"
    socketio = SocketIO(app, namespaces="*", **options)
    state = {"connects": []}
    app.state = state

    if class_based:
        class Anything(Namespace):
            def on_connect(self, namespace, auth):
                state["connects"].append({"namespace": namespace, "auth": auth,
                                          "request_ns": request.namespace})

            def on_ping_any(self, namespace, data):
                self.emit("pong_any", {"namespace": namespace})
                return {"namespace": namespace, "data": data, "sid": request.sid}

        socketio.on_namespace(Anything("*"))
        return app, socketio

    @socketio.on("connect", namespace="*")
    def connect_any(namespace, auth):
        state["connects"].append({"sid": request.sid, "auth": auth, "namespace": namespace})

    @socketio.on("ping_any", namespace="*")
    def ping_any(namespace, data):
        return {"namespace": namespace, "data": data}

    @socketio.on("*", namespace="*")
    def any_any(event, namespace, *args):
        return {"event": event, "namespace": namespace, "args": list(args)}

    return app, socketio
