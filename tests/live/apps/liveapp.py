"""The app every live-matrix server serves: one handler per scenario.

Served as ``liveapp:app`` (tests/live/apps on PYTHONPATH) by gunicorn,
uWSGI, waitress and Werkzeug; ``python liveapp.py --port N [--debug]`` runs
it through ``socketio.run()``.
"""
from __future__ import annotations

import argparse
import os
import threading

from flask import Flask, request

from server import ConnectionRefusedError, SocketIO, disconnect, emit, join_room

# 1 MiB of binary travels as ~1.4 MB of base64 on the polling transport
MAX_BUFFER = 3_000_000


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "live-tests"
    socketio = SocketIO(app, max_http_buffer_size=MAX_BUFFER)

    @app.route("/ready")
    def ready():
        return {"pid": os.getpid()}

    @app.route("/cookie")
    def cookie():
        # the length of what reached the app, so a truncated header shows
        return {"cookie_length": len(request.headers.get("Cookie", ""))}

    @app.route("/stop")
    def stop():
        socketio.stop()
        return "stopping"

    release = threading.Event()

    @app.route("/hold")
    def hold():
        # holds its request thread until a client emits "release" (bounded)
        release.clear()
        socketio.emit("held")
        return "released" if release.wait(20) else "not released"

    @socketio.on("release")
    def on_release():
        release.set()
        return True

    @socketio.on("connect")
    def on_connect(auth):
        if isinstance(auth, dict) and auth.get("refuse"):
            raise ConnectionRefusedError("refused", {"why": auth["refuse"]})
        emit("welcome", {"auth": auth, "sid": request.sid})

    @socketio.on("echo")
    def on_echo(data):
        return data

    @socketio.on("join")
    def on_join(room):
        join_room(room)
        return room

    @socketio.on("to_room")
    def on_to_room(message):
        emit("room_message", message["data"], to=message["room"])
        return True

    @socketio.on("broadcast")
    def on_broadcast(data):
        socketio.emit("broadcast", data)
        return True

    @socketio.on("start_ticks")
    def on_start_ticks(count):
        sid = request.sid

        def ticker():
            for n in range(count):
                socketio.emit("tick", n, to=sid)
                socketio.sleep(0.01)

        socketio.start_background_task(ticker)
        return True

    @socketio.on("burst")
    def on_burst(count):
        for n in range(count):
            emit("burst_item", n)
        return count

    @socketio.on("kick_me")
    def on_kick_me():
        disconnect()

    return app


app = create_app()

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--server", default=None)
    args = parser.parse_args()
    options = {"debug": True} if args.debug else {"server": args.server}
    app.extensions["socketio"].run(app, host="127.0.0.1", port=args.port, **options)
