"""The demo application: a small multi-room chat.

``wsgi.py`` serves it; so do ``python -m server`` and the README's first
command.  It uses the API a Flask-SocketIO user knows: rooms, acks, auth on
connect, error handlers, per-connection sessions and a background task.
"""
from __future__ import annotations

import os
import secrets
import time

from flask import Flask, abort, render_template, request, send_file, session

from server import ConnectionRefusedError, SocketIO, emit, join_room, leave_room


def create_app(**socketio_options) -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ.get("SERVER_SECRET_KEY") or secrets.token_hex(16)
    socketio = SocketIO(app, **socketio_options)
    members: dict[str, dict[str, str]] = {}  # room -> sid -> name

    @app.route("/")
    def index():
        return render_template("index.html")

    @app.route("/static/socket.io.min.js")
    def socketio_client():
        # the official client, installed from npm by scripts/bootstrap (no CDN)
        path = os.path.join(os.path.dirname(__file__), "node_modules", "socket.io-client",
                            "dist", "socket.io.min.js")
        if not os.path.exists(path):
            abort(404, "socket.io-client is not installed: run "
                       "npm ci --prefix server/demo (scripts/serve does)")
        return send_file(path, mimetype="text/javascript", max_age=3600)

    @app.route("/healthz")
    def healthz():
        return {"status": "ok"}

    @socketio.on("connect")
    def connect(auth):
        name = (auth or {}).get("name", "").strip()
        if not name or len(name) > 32:
            raise ConnectionRefusedError("a name of 1 to 32 characters is required")
        session["name"] = name

    @socketio.on("join")
    def join(room):
        room = str(room)[:32] or "lobby"
        join_room(room)
        members.setdefault(room, {})[request.sid] = session["name"]
        emit("presence", sorted(members[room].values()), to=room)
        return {"room": room}

    @socketio.on("leave")
    def leave(room):
        leave_room(room)
        members.get(room, {}).pop(request.sid, None)
        emit("presence", sorted(members.get(room, {}).values()), to=room)

    @socketio.on("say")
    def say(room, text):
        emit("said", {"from": session["name"], "text": str(text)[:500]}, to=room)
        return "delivered"

    @socketio.on("disconnect")
    def disconnect(reason):
        for room, who in members.items():
            if who.pop(request.sid, None) is not None:
                emit("presence", sorted(who.values()), to=room)

    @socketio.on_error_default
    def error(exc):
        return {"error": str(exc)}

    def clock():
        while True:
            socketio.sleep(1)
            socketio.emit("clock", time.strftime("%H:%M:%S"))

    socketio.start_background_task(clock)
    return app
