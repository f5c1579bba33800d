"""WebSocket hand-off driver for Werkzeug's development server.

Verified against Werkzeug 3.1 (``werkzeug/serving.py``):
``environ['werkzeug.socket']`` is the request handler's connection.  After
the app returns, ``run_wsgi`` writes the status line and headers, drains
what is left to read, and the handler then shuts the socket down and
closes it.  :func:`~server.websocket.takeover.take_over` swaps a peer-less
stand-in under that descriptor first: the drain reads end-of-file at once
and the header write raises ``BrokenPipeError``, a ``ConnectionError`` that
Werkzeug handles as "connection dropped" (``connection_dropped``, silent).
The status is still logged (Werkzeug logs before writing), as 101.

Simple-websocket's Werkzeug mode instead raises ``ConnectionError`` from the
app after the WebSocket has ended; here the request thread returns at once.

With ``ssl_context`` the connection is an ``ssl.SSLSocket``, which cannot be
duplicated: such WebSockets are served in the request thread instead.
"""
from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable, Iterable
from typing import Any

from .drivers import REFUSAL_KEY
from .takeover import release_switched, take_over

NAME = "werkzeug"

log = logging.getLogger("server.websocket")


def matches(environ: dict[str, Any]) -> bool:
    return "werkzeug.socket" in environ


def detach(environ: dict[str, Any]) -> socket.socket | None:
    if isinstance(environ["werkzeug.socket"], ssl.SSLSocket):
        reason = "Werkzeug terminates TLS (ssl_context) and a TLS socket cannot be handed off"
        environ[REFUSAL_KEY] = reason
        log.debug("werkzeug: WebSocket not handed off: %s", reason)
        return None
    return take_over(environ["werkzeug.socket"])


def release(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    return release_switched(environ, start_response)


def borrow(environ: dict[str, Any]) -> socket.socket | None:
    sock: socket.socket = environ["werkzeug.socket"]
    return sock
