"""The benchmark application on Flask-SocketIO 5.7.0 (the peer), same handlers as ours_app.

``BENCH_ASYNC_MODE`` picks eventlet, gevent or threading.  eventlet and
gevent run as Flask-SocketIO documents (``socketio.run``: eventlet's WSGI
server; gevent's with gevent-websocket); threading is served by gunicorn
gthread as ``peer_app:app``.  Runs only in bench/.peers-venv.
"""
import os
import sys

from burn import burn, iterations
from flask import Flask
from flask_socketio import SocketIO

app = Flask(__name__)
socketio = SocketIO(app, async_mode=os.environ.get("BENCH_ASYNC_MODE", "threading"))
CPU_ITERS = iterations()


@app.route("/health")
def health():
    return "ok"


@socketio.on("echo")
def echo(data):
    return data


@socketio.on("broadcast")
def broadcast(data):
    socketio.emit("bcast", data)


@socketio.on("cpu")
def cpu(data):
    burn(CPU_ITERS)
    return data


if __name__ == "__main__":
    socketio.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_output=False)
