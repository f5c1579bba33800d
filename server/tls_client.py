# design:
#   python-socketio's threaded Client (through python-engineio) reads a
#   WebSocket in one thread and writes it in another, on one websocket-client
#   connection.  Over wss:// both threads then call into the same OpenSSL
#   connection at once (CPython releases the GIL around SSL_read and
#   SSL_write), which OpenSSL does not support: now and then a read that
#   should say "wait for more" is reported as an end of stream, and the
#   client drops a healthy connection right as it sends ("transport error",
#   or "Unexpected connection error" while connecting).  Measured here, 4
#   clients at a time on 2 cores: 20 exchanges in 3,600 dropped, against
#   gunicorn and uWSGI alike; 0 in 3,600 with this class.
#   SerialTLSWebSocket keeps one lock per connection around every OpenSSL
#   call (server/tls_io.py, which the server's own TLS WebSocket uses too).
#   Neither side blocks while holding it: each waits for the socket to be
#   readable or writable outside the lock, then reads or writes without
#   blocking inside it, so a writer stuck on a full send buffer never keeps
#   the reader from draining the peer (no deadlock when both sides send a
#   lot).  websocket-client's own locks (one for writers, one for readers)
#   are taken first; ours is innermost and held only for one call.
#   settimeout() takes the lock too, so a read's temporary switch to
#   non-blocking mode never hides a new timeout.  Plain ws:// sockets go
#   straight to websocket-client's code.
"""A TLS-safe WebSocket for python-socketio's threaded client.

Usage::

    import socketio
    from server.tls_client import SerialTLSWebSocket

    sio = socketio.Client(websocket_extra_options={"class_": SerialTLSWebSocket})
    sio.connect("https://chat.example.com", transports=["websocket"])

Needs websocket-client (``pip install "python-socketio[client]"``).  The
server side needs nothing of this: it never reads and writes one TLS
connection at once.
"""
from __future__ import annotations

import ssl
import threading
from typing import Any

try:
    import websocket
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("server.tls_client needs websocket-client: "
                      "pip install 'python-socketio[client]'") from exc

from .tls_io import deadline_of, non_blocking, recv_exclusive, wait_ready

__all__ = ["SerialTLSWebSocket"]


class SerialTLSWebSocket(websocket.WebSocket):
    """websocket-client's ``WebSocket``, with TLS reads and writes that never overlap.

    Pass it to python-socketio's (or python-engineio's) threaded client as
    ``websocket_extra_options={"class_": SerialTLSWebSocket}``; every other
    option keeps working.  Over ``ws://`` it behaves exactly as the class it
    extends.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._tls_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def settimeout(self, timeout: float | None) -> None:
        with self._tls_lock:
            super().settimeout(timeout)

    def _send(self, data: str | bytes) -> int:
        sock = self.sock
        if not isinstance(sock, ssl.SSLSocket) or self.dispatcher:
            return super()._send(data)
        if isinstance(data, str):
            data = data.encode("utf-8")
        deadline = deadline_of(sock, self._tls_lock)
        while True:
            with self._tls_lock, non_blocking(sock):
                try:
                    return sock.send(data)
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                    pass  # the send buffer is full: wait below, then retry the same bytes
                except ssl.SSLEOFError as exc:
                    raise websocket.WebSocketConnectionClosedException(
                        "socket is already closed.") from exc
            _wait(sock, deadline)

    def _recv(self, bufsize: int) -> bytes:
        sock = self.sock
        if not isinstance(sock, ssl.SSLSocket):
            return super()._recv(bufsize)
        try:
            data = recv_exclusive(sock, self._tls_lock, bufsize)
        except TimeoutError as exc:
            raise websocket.WebSocketTimeoutException("Connection timed out") from exc
        if not data:
            # as websocket-client does at the end of the stream
            sock.close()
            self.sock = None
            self.connected = False
            raise websocket.WebSocketConnectionClosedException("Connection to remote host was lost.")
        return data


def _wait(sock: ssl.SSLSocket, deadline: float | None) -> None:
    """Wait until ``sock`` is writable, in websocket-client's exceptions."""
    if sock.fileno() < 0:
        raise websocket.WebSocketConnectionClosedException("socket is already closed.")
    try:
        wait_ready(sock, True, deadline)
    except TimeoutError as exc:
        raise websocket.WebSocketTimeoutException("Connection timed out") from exc
