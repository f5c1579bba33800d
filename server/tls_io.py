# design:
#   One TLS connection read by one thread and written by another: OpenSSL
#   does not allow two calls on one connection at once (CPython releases the
#   GIL around each), so every OpenSSL call on it (SSL_read, SSL_write,
#   SSL_pending) is made under one lock the caller owns, with the socket
#   non-blocking for that call only.  Waiting for the socket to become
#   readable or writable happens outside the lock: a reader waiting for data
#   never keeps a writer out.  The socket's timeout is read under the lock,
#   never while another thread has the socket momentarily non-blocking.
#   Used by the server (server/websocket/handoff.py, a TLS WebSocket served
#   in gunicorn's request thread) and by the client side
#   (server/tls_client.py, python-socketio's threaded client over wss://).
"""Reading and writing one TLS socket from two threads without overlapping OpenSSL calls."""
from __future__ import annotations

import contextlib
import select
import ssl
import threading
import time
from collections.abc import Iterator

__all__ = ["deadline_of", "non_blocking", "recv_exclusive", "wait_ready"]


def deadline_of(sock: ssl.SSLSocket, lock: threading.Lock) -> float | None:
    """The monotonic deadline of one operation under ``sock``'s own timeout."""
    with lock:  # not while another thread has the socket non-blocking
        timeout = sock.gettimeout()
    return None if timeout is None else time.monotonic() + timeout


@contextlib.contextmanager
def non_blocking(sock: ssl.SSLSocket) -> Iterator[None]:
    """Non-blocking for one OpenSSL call; the caller holds the connection's lock."""
    timeout = sock.gettimeout()
    sock.settimeout(0)
    try:
        yield
    finally:
        sock.settimeout(timeout)


def wait_ready(sock: ssl.SSLSocket, writable: bool, deadline: float | None) -> None:
    """Block until ``sock`` is readable (or writable); TimeoutError at the deadline.

    Errors and hang-ups count as ready: the read or write that follows says
    which.  poll() where there is one (no limit on descriptor numbers, one
    system call), select() elsewhere (Windows, for the client).
    """
    fd = sock.fileno()
    if fd < 0:
        raise OSError("the socket is closed")
    wait = None if deadline is None else max(0.0, deadline - time.monotonic())
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLOUT if writable else select.POLLIN)
        ready = bool(poller.poll(None if wait is None else wait * 1000))
    else:  # pragma: no cover - Windows
        readers, writers, _ = select.select([] if writable else [fd], [fd] if writable else [],
                                            [], wait)
        ready = bool(readers or writers)
    if not ready:
        raise TimeoutError("TLS socket not ready before its timeout")


def recv_exclusive(sock: ssl.SSLSocket, lock: threading.Lock, bufsize: int) -> bytes:
    """``sock.recv(bufsize)`` that never overlaps a writer holding ``lock``.

    Waits up to the socket's timeout (TimeoutError after it); ``b""`` at the
    end of the stream.
    """
    deadline = deadline_of(sock, lock)
    writable = False  # what the next wait is for
    while True:
        with lock:
            buffered = sock.pending()
        if writable or not buffered:
            wait_ready(sock, writable, deadline)
        with lock, non_blocking(sock):
            try:
                return sock.recv(bufsize)
            except (ssl.SSLWantReadError, BlockingIOError):
                writable = False  # only part of a TLS record is here: wait for the rest
            except ssl.SSLWantWriteError:
                writable = True  # OpenSSL has to write first (renegotiation)
