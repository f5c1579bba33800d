"""The benchmark application on this project's server (``from server import``).

Handlers, identical in every server under test: ``echo`` acks its argument,
``broadcast`` sends ``bcast`` to every client, ``cpu`` runs 50 ms of
pure-Python CPU work (burn.py) and acks.  Served as ``ours_app:app``.
"""
from burn import burn, iterations
from flask import Flask

from server import SocketIO
from server.settings import BY_NAME

# Shipped defaults, except the per-connection event rate limit: a security
# default the peers do not have, which a benchmark client exceeds by design
# (one client sends thousands of events a second).  The per-address limits
# do not apply to loopback peers by default.
LIFTED = {name: None for name in ("event_rate",) if name in BY_NAME}

app = Flask(__name__)
socketio = SocketIO(app, **LIFTED)
CPU_ITERS = iterations()


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
