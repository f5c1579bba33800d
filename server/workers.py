# design:
#   Several worker processes on one machine (gunicorn -w N, uWSGI processes = N)
#   with no sticky sessions.  The kernel hands each new connection to whichever
#   worker accepts it, so an Engine.IO session can only live in one request:
#   WebSocket only, and the message queue carries emits between workers.
#   WorkerGuard runs in the WSGI server's request thread, before Engine.IO; it
#   only reads the engine's session table (a dict lookup, no lock) and never
#   blocks.  It holds no state of its own besides the rate-limited warning.
"""Running several worker processes: WebSocket only, message queue required.

One setting turns the mode on: ``workers`` (``SERVER_WORKERS``), which
gunicorn.conf.py and uwsgi.ini also read for their process count; under uWSGI
the ``processes`` count is detected when ``SERVER_WORKERS`` is not set.  With
more than one worker:

* ``transports`` defaults to ``['websocket']`` (asking for polling is an error);
* a message queue is required (start-up error naming the fix);
* a polling request, or any request naming a session this process does not
  know, gets a 400 that explains the cause instead of "Invalid session".

With one worker and a message queue (several machines behind a proxy), a
request for an unknown session gets a 400 that mentions sticky sessions.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from . import settings as _settings
from .errors import ConfigurationError
from .logs import RateLimitedLog

log = logging.getLogger("server")

__all__ = ["WorkerGuard", "apply_worker_mode", "worker_count"]


def worker_count(environ: Mapping[str, str] | None = None) -> int:
    """Worker processes serving this app: ``SERVER_WORKERS``, else uWSGI's
    ``processes`` when running under uWSGI, else 1."""
    value = _settings.server_value("workers", environ)
    if value is not None:
        return int(value)
    try:
        import uwsgi  # only importable inside a uWSGI process
    except ImportError:
        return 1
    return max(1, int(getattr(uwsgi, "numproc", 1)))


def apply_worker_mode(options: dict[str, Any], workers: int) -> dict[str, Any]:
    """Adjust resolved SocketIO options for ``workers`` processes.

    Returns ``options`` (changed in place): WebSocket-only transport when
    ``workers > 1``.  Raises ConfigurationError when the mode cannot work.
    """
    if workers <= 1:
        return options
    if not options.get("message_queue") and options.get("client_manager") is None:
        raise ConfigurationError(
            f"SERVER_WORKERS={workers} (several worker processes) needs a message queue, "
            f"so that an emit in one worker reaches the clients of the others. Fix: set "
            f"SERVER_MESSAGE_QUEUE=redis://HOST:6379/0 (or pass message_queue= to "
            f"SocketIO()), or run one worker (SERVER_WORKERS=1) with more threads")
    transports = options.get("transports")
    if transports is None:
        options["transports"] = ["websocket"]
    elif "polling" in ([transports] if isinstance(transports, str) else transports):
        raise ConfigurationError(
            f"setting transports={transports!r} is invalid with SERVER_WORKERS={workers}: "
            f"without sticky sessions a polling client's requests reach different "
            f"workers. Fix: leave transports unset (WebSocket only), or run one worker "
            f"per instance behind a proxy with sticky sessions (docs/nginx.md)")
    return options


def _query(environ: Mapping[str, Any]) -> tuple[str, str | None]:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    return query.get("transport", ["polling"])[0], query.get("sid", [None])[0]


class WorkerGuard:
    """WSGI middleware: refuse requests another process should have had, saying why.

    ``engine`` is the Engine.IO server (its ``sockets`` table is read per
    request); ``path`` the Socket.IO endpoint (``'socket.io'``).
    """

    def __init__(self, wsgi_app: Callable, engine: Any, path: str, workers: int) -> None:
        self.wsgi_app = wsgi_app
        self.engine = engine
        self.prefix = "/" + path.strip("/") + "/"
        self.workers = workers
        self._warning = RateLimitedLog(log, interval=10.0)

    def refusal(self, environ: Mapping[str, Any]) -> str | None:
        """Why this request cannot be served by this process, or None."""
        if not environ.get("PATH_INFO", "").startswith(self.prefix):
            return None
        transport, sid = _query(environ)
        if self.workers > 1 and transport != "websocket":
            return (f"this server runs {self.workers} workers without sticky sessions: "
                    f"use transports=['websocket'] on the client, or sticky sessions "
                    f"(one worker per instance behind a proxy with ip_hash)")
        if sid is not None and sid not in self.engine.sockets:
            if self.workers > 1:
                return (f"session {sid} is not known to this worker: this server runs "
                        f"{self.workers} workers without sticky sessions: use "
                        f"transports=['websocket'] on the client, or sticky sessions")
            return (f"session {sid} is not known to this server process: it has closed "
                    f"or expired, or a load balancer sent the request to another "
                    f"instance: enable sticky sessions (nginx ip_hash, docs/nginx.md) "
                    f"or use transports=['websocket'] on the client")
        return None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        reason = self.refusal(environ)
        if reason is None:
            return self.wsgi_app(environ, start_response)
        self._warning.warning("refused %s %s from %s: %s", environ.get("REQUEST_METHOD"),
                              environ.get("PATH_INFO"), environ.get("REMOTE_ADDR"), reason)
        # the same body shape as Engine.IO's own 400s: a JSON string
        body = json.dumps(reason).encode()
        start_response("400 BAD REQUEST", [("Content-Type", "text/plain"),
                                           ("Content-Length", str(len(body)))])
        return [body]
