"""Not a test: the app the scaling tests (and bench/fanout.py) serve.

``gunicorn 'test_scaling_app:create_app()'`` with ``SERVER_MESSAGE_QUEUE`` and
``SERVER_CHANNEL`` in the environment.  Events:

``whoami``            → ``{"pid", "instance"}`` (the worker a client landed on)
``join`` room         → joins the room, returns ``"joined"``
``shout`` data        → broadcasts ``heard`` to every client
``to_room`` room,data → emits ``room_msg`` to the room
``echo`` data         → emits ``echo`` back to the sender only

HTTP: ``/ping`` (readiness), ``/whoami``, ``/emit?event=E&data=D[&to=R]`` (a
server-side emit from an HTTP handler).
"""
from __future__ import annotations

import os

from flask import Flask, jsonify, request

from server import SocketIO, emit, join_room


def create_app() -> Flask:
    app = Flask(__name__)
    socketio = SocketIO(app)  # queue, channel, workers: SERVER_* environment
    instance = os.environ.get("SCALING_INSTANCE", "?")

    def whoami() -> dict:
        return {"pid": os.getpid(), "instance": instance}

    @app.route("/ping")
    def ping():
        return "pong"

    @app.route("/whoami")
    def whoami_http():
        return jsonify(whoami())

    @app.route("/emit")
    def emit_http():
        socketio.emit(request.args["event"], request.args.get("data"),
                      to=request.args.get("to"))
        return "sent"

    @socketio.on("whoami")
    def whoami_event():
        return whoami()

    @socketio.on("join")
    def join(room):
        join_room(room)
        return "joined"

    @socketio.on("shout")
    def shout(data):
        socketio.emit("heard", data)

    @socketio.on("to_room")
    def to_room(room, data):
        socketio.emit("room_msg", data, to=room)

    @socketio.on("echo")
    def echo(data):
        emit("echo", data)

    return app
