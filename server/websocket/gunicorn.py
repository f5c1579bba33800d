"""WebSocket hand-off driver for gunicorn's gthread worker.

Verified against gunicorn 27 (``workers/gthread.py``, ``http/wsgi.py``):
``environ['gunicorn.socket']`` is the connection's socket object.  After the
app returns, gunicorn writes the response headers (``Response.close``) and
then closes the connection "gracefully" (``shutdown(SHUT_WR)``, drain,
close).  :func:`~server.websocket.takeover.take_over` swaps a peer-less
stand-in under gunicorn's descriptor first, so the header write fails with
EPIPE, which gunicorn logs at debug level ("Ignoring connection epipe") and
answers by closing the connection instead of keeping it alive: the worker
thread is free at once and gunicorn forgets the connection (it no longer
counts toward ``worker_connections`` either).

Not handed off, served in the request thread instead (one gunicorn thread
held per WebSocket, as python-engineio does by default):

* TLS terminated by gunicorn (``--certfile``): an ``ssl.SSLSocket`` cannot
  be duplicated, its TLS state lives in gunicorn's object.  Terminate TLS in
  a proxy (nginx) in front of gunicorn to get the hand-off.
* the sync worker: its one thread would be held for the WebSocket's life,
  and the arbiter kills a worker silent for ``--timeout`` seconds, so a
  WebSocket there lasts at most that long.  Use ``-k gthread --threads N``.
"""
from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable, Iterable
from typing import Any

from .drivers import REFUSAL_KEY
from .takeover import release_switched, take_over

NAME = "gunicorn"

log = logging.getLogger("server.websocket")


def matches(environ: dict[str, Any]) -> bool:
    return "gunicorn.socket" in environ


def _refusal(environ: dict[str, Any]) -> str | None:
    if isinstance(environ["gunicorn.socket"], ssl.SSLSocket):
        return ("gunicorn terminates TLS and a TLS socket cannot be handed off; "
                "terminate TLS in a proxy in front of gunicorn")
    if not environ.get("wsgi.multithread"):
        return ("gunicorn's sync worker is not supported (its only thread is held and the "
                "worker is killed after --timeout); run gunicorn with -k gthread")
    return None


def detach(environ: dict[str, Any]) -> socket.socket | None:
    reason = _refusal(environ)
    if reason is not None:
        environ[REFUSAL_KEY] = reason
        log.debug("gunicorn: WebSocket not handed off: %s", reason)
        return None
    return take_over(environ["gunicorn.socket"])


def release(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    return release_switched(environ, start_response)


def borrow(environ: dict[str, Any]) -> socket.socket | None:
    sock: socket.socket = environ["gunicorn.socket"]
    return sock
