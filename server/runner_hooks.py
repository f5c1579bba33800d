"""Graceful-shutdown hooks shared by gunicorn.conf.py, uwsgi.ini and run().

A stopping server process closes every WebSocket with a close frame (1001,
going away) and every polling session with an Engine.IO close, so that
clients reconnect (to the restarted server) instead of waiting for a ping
timeout.  The hooks find the application's SocketIO the Flask way, through
``app.extensions['socketio']``, starting from whatever callable the WSGI
server loaded.
"""
from __future__ import annotations

import importlib
import logging
import signal
import threading
from typing import Any

from .settings import server_value

log = logging.getLogger("server")


def find_socketio(wsgi: Any) -> Any | None:
    """The SocketIO of the Flask app behind ``wsgi``, or None if there is none."""
    seen = 0
    while wsgi is not None and seen < 5:  # a few wrapping layers at most
        extensions = getattr(wsgi, "extensions", None)
        if isinstance(extensions, dict) and "socketio" in extensions:
            return extensions["socketio"]
        # middlewares conventionally keep the app they wrap in one of these
        wsgi = getattr(wsgi, "flask_app", None) or getattr(wsgi, "app", None) \
            or getattr(wsgi, "wsgi_app", None)
        seen += 1
    return None


def close_connections(wsgi: Any, reason: str, timeout: float | None = None) -> bool:
    """Close every client of the SocketIO behind ``wsgi``; True if there was one."""
    socketio = find_socketio(wsgi)
    if socketio is None:
        log.debug("graceful shutdown: no SocketIO found behind %r", wsgi)
        return False
    if timeout is None:
        timeout = float(server_value("graceful_timeout"))
    try:
        socketio.shutdown(reason=reason, timeout=timeout)
    except Exception:  # the process is exiting anyway: report, do not mask the exit
        log.exception("graceful shutdown: closing the clients failed")
    return True


#: attribute of the gunicorn worker holding the thread that closes its clients
CLOSER_ATTR = "server_closer_thread"


def close_first_on_sigterm(worker: Any) -> None:
    """gunicorn ``post_worker_init``: on SIGTERM close the clients, then stop as gunicorn does.

    The closing runs on a thread of its own (a signal handler must not block
    the worker's loop); gunicorn's own handler then starts its graceful stop,
    which no longer waits for long-polls since they have been answered.
    :func:`close_at_worker_exit` waits for that thread instead of closing twice.
    """
    gunicorn_handler = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        if getattr(worker, CLOSER_ATTR, None) is None:
            closer = threading.Thread(target=close_connections, name="server-shutdown",
                                      daemon=True,
                                      args=(getattr(worker, "wsgi", None), "server shutting down"))
            setattr(worker, CLOSER_ATTR, closer)
            closer.start()
        if callable(gunicorn_handler):
            gunicorn_handler(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


def close_at_worker_exit(worker: Any, reason: str = "server shutting down",
                         timeout: float | None = None) -> None:
    """gunicorn ``worker_exit`` / ``worker_int``: close the clients unless SIGTERM already did."""
    if timeout is None:
        timeout = float(server_value("graceful_timeout"))
    closer = getattr(worker, CLOSER_ATTR, None)
    if closer is not None:
        closer.join(timeout)  # let the close frames go out before the process ends
        return
    setattr(worker, CLOSER_ATTR, threading.current_thread())
    # no wsgi attribute when the app failed to load: nothing to close
    close_connections(getattr(worker, "wsgi", None), reason=reason, timeout=timeout)


def load_spec(spec: str) -> Any:
    """The object named by ``module:attribute`` (already imported by the server)."""
    module_name, _, attribute = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in (attribute or "application").split("."):
        obj = getattr(obj, part)
    return obj
