"""The demo application: a multi-room chat and a CPU job, on the API a
Flask-SocketIO user knows.

``wsgi.py`` serves it (``gunicorn -c gunicorn.conf.py wsgi:app``,
``uwsgi --ini uwsgi.ini``, ``python -m server run``).  What it shows:

* ``/`` (chat.py): auth on connect (a name; no name, no connection), rooms
  with presence, acknowledged messages, private messages to one client,
  an error handler whose reply reaches the ack, the per-connection session;
* ``/jobs`` (jobs.py): a class-based namespace whose handler counts primes
  (real CPU work) while streaming progress to the page;
* a background task broadcasting the server's clock (clock.py);
* the page (web.py, templates/, static/) served with a strict
  Content-Security-Policy and the official Socket.IO client from npm.

The demo's state lives in ``app.extensions["demo"]``, not in globals.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import Any

from flask import Flask

from server import SocketIO

from . import chat, web
from .clock import Clock
from .jobs import JobsNamespace
from .presence import Presence
from .validate import error_reply


@dataclass(frozen=True)
class Demo:
    socketio: SocketIO
    presence: Presence
    clock: Clock
    jobs: JobsNamespace


def create_app(*, clock_interval: float = 1.0, max_jobs: int = 2,
               **socketio_options: Any) -> Flask:
    """The demo app; ``socketio_options`` go to :class:`server.SocketIO`."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ.get("SERVER_SECRET_KEY") or secrets.token_hex(16)
    socketio = SocketIO(app, **socketio_options)
    demo = Demo(socketio, Presence(), Clock(socketio, clock_interval),
                JobsNamespace("/jobs", max_running=max_jobs))
    app.extensions["demo"] = demo
    web.register(app)
    chat.register(socketio, demo.presence, demo.clock)
    socketio.on_namespace(demo.jobs)
    socketio.on_error("/jobs")(error_reply)
    return app
