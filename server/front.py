# design:
#   What a WSGI server of ours decides before a request reaches a request
#   thread, shared by server.gunicorn_worker and server.waitress_server:
#   * Front: found once in the loaded app (our OpsMiddleware and the
#     Engine.IO path); says whether a request head is a plain health/readiness
#     probe (answered on the server's own I/O thread from plain attributes,
#     OpsMiddleware.answer_inline: no app code, no lock) or a Socket.IO
#     WebSocket handshake (served by the handshake lane);
#   * HandshakeLane: a small pool (setting handshake_threads) for WebSocket
#     handshakes.  They are CPU work only, the WebSocket being handed off to
#     our reactor at once, so a few threads finish them as fast as a hundred
#     and leave fewer threads contending for the GIL; a connect storm queues
#     here, not in front of HTTP requests and long-polls.  A WebSocket whose
#     hand-off failed is served in the thread that took it, for its whole
#     life: when every lane thread has been on one handshake for longer than
#     HELD_AFTER seconds, held() says so and the server sends handshakes to its
#     request pool instead.
#   Threads: submit() from any thread; the lane's own threads write
#   _started (one dict operation at a time), held() reads it.  No locks.
"""The front door of our WSGI servers: inline health answers and the handshake lane."""
from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .ops import OpsMiddleware

__all__ = ["ACCEPT_BATCH", "Front", "HandshakeLane", "encode_answer", "probe_environ"]

#: methods answered inline (the health and readiness paths take no others)
METHODS_INLINE = ("GET", "HEAD")
#: connections accepted per turn of a server's loop, at most (where the server
#: takes one per turn, a probe in a connect storm waits one turn per connection
#: ahead of it in the accept queue)
ACCEPT_BATCH = 64
#: seconds on one handshake after which a lane thread counts as held
HELD_AFTER = 1.0

#: header lookup: lower-case name -> the values joined by commas, or None
HeaderGetter = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Front:
    """What a server answers or routes itself, found in the loaded app."""

    ops: OpsMiddleware | None
    engineio_path: str | None

    @classmethod
    def find(cls, app: Any) -> Front | None:
        """Walk the WSGI chain (Flask app -> wsgi_app -> .app ...) for our layers."""
        ops = None
        node, depth = app, 0
        while node is not None and depth < 10:
            if ops is None and isinstance(node, OpsMiddleware):
                ops = node
            path = getattr(node, "engineio_path", None)
            if isinstance(path, str):
                return cls(ops, path)
            node = getattr(node, "wsgi_app", None) or getattr(node, "app", None)
            depth += 1
        return cls(ops, None) if ops is not None else None

    def inline(self, method: str, target: str, header: HeaderGetter) -> bool:
        """Whether a complete, bodiless request may be answered inline.

        The caller has checked that nothing follows the head it parsed.
        """
        return (self.ops is not None and method in METHODS_INLINE
                and header("content-length") in (None, "0")
                and header("transfer-encoding") is None
                and target.startswith("/") and "%" not in target
                # a browser's request: its same-origin check needs the scheme
                # the server derives from trusted proxy headers: the app's path
                and header("origin") is None and header("sec-fetch-site") is None)

    def handshake(self, target: str, header: HeaderGetter) -> bool:
        """Whether the request is a WebSocket handshake on the Socket.IO path."""
        upgrade = header("upgrade") or ""
        return (self.engineio_path is not None and target.startswith(self.engineio_path)
                and "websocket" in upgrade.lower())

    def answer(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """The health/readiness answer for ``environ``, or None (not one of those paths)."""
        return None if self.ops is None else self.ops.answer_inline(environ)


def probe_environ(method: str, target: str, protocol: str, headers: Iterable[tuple[str, str]],
                  remote_addr: str, server: tuple[str, str]) -> dict[str, Any]:
    """The WSGI environ OpsMiddleware.answer_inline needs, for a request read by
    the server itself; ``headers`` are (lower-case name, value) pairs, repeated
    names joined by commas as a WSGI server does."""
    path, _, query = target.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path,
        "QUERY_STRING": query, "SERVER_PROTOCOL": protocol, "wsgi.url_scheme": "http",
        "REMOTE_ADDR": remote_addr, "SERVER_NAME": server[0], "SERVER_PORT": server[1],
    }
    for name, value in headers:
        key = "HTTP_" + name.upper().replace("-", "_")
        environ[key] = f"{environ[key]}, {value}" if key in environ else value
    return environ


def encode_answer(answer: tuple[str, list[tuple[str, str]], bytes], close: bool) -> bytes:
    """An inline answer as HTTP/1.1 response bytes."""
    status, headers, body = answer
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers),
             f"Date: {email.utils.formatdate(usegmt=True)}",
             "Connection: close" if close else "Connection: keep-alive"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class HandshakeLane:
    """The pool WebSocket handshakes are served in (see the design note)."""

    def __init__(self, threads: int, held_after: float = HELD_AFTER) -> None:
        self.threads = threads
        self.held_after = held_after
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="handshake")
        #: thread ident -> when its current handshake started
        self._started: dict[int, float] = {}

    def submit(self, serve: Callable[..., Any], *args: Any) -> Future:
        """Run ``serve(*args)`` on a lane thread."""
        return self._pool.submit(self._timed, serve, *args)

    def _timed(self, serve: Callable[..., Any], *args: Any) -> Any:
        me = threading.get_ident()
        self._started[me] = time.monotonic()
        try:
            return serve(*args)
        finally:
            del self._started[me]

    def held(self) -> bool:
        """Whether every lane thread has been on one handshake for over ``held_after`` s."""
        started = list(self._started.values())
        return (len(started) >= self.threads
                and max(started) < time.monotonic() - self.held_after)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False)
