# design:
#   One HandoffWebSocket per WebSocket connection; python-engineio builds it
#   and calls it as a WSGI app from the WSGI server's request thread.
#   __call__ checks the handshake (no I/O), asks the server's driver to
#   detach the connection, writes the 101 response on the detached socket,
#   starts one daemon thread of ours and returns driver.release(): the
#   request thread is free at once.
#   Socket ownership: after detach() the socket is ours alone.  Reads happen
#   only in wait(), which python-engineio calls from the handler thread we
#   start (and, once the handler has returned, from _finish in that same
#   thread).  Writes (send, close, replies to pings and closes) may come from
#   any thread; each holds self._lock around wsproto's encode and sendall, so
#   frames never interleave and wsproto's state is only touched under it.
#   recv() runs outside the lock, except on a TLS socket (the fallback path
#   only: TLS is never handed off): an OpenSSL connection must not read and
#   write at once from two threads (seen here as messages lost now and then
#   in the first exchanges, when TLS 1.3 session tickets arrive), so the
#   reader waits for data outside the lock and reads without blocking inside
#   it (server/tls_io.py, shared with the client side).  Nothing blocks
#   while holding the lock but sendall to a slow peer; close() from another
#   thread can bound its wait.
#   Lock order: self._lock, then self._fd_lock (which only guards close
#   against abort's shutdown, so an fd number is never shut after reuse).
#   The registry never holds its own lock while calling into a connection.
#   Close: once a Close frame is sent (close(), or 1009 for a message over
#   the cap) or received, or the stream ends, wait() returns None and the
#   handler winds down; _finish() then reads up to close_timeout for the
#   peer's Close, closes the socket, leaves the registry and sets `done`.
#   Fallback: when the driver cannot detach (TLS, gunicorn's sync worker...)
#   the same object serves the server's own socket in the request thread,
#   exactly as python-engineio's SimpleWebSocketWSGI does: that thread is
#   held for the connection's whole life (the trade-off), and at the end we
#   shut the socket down instead of closing it (the server still owns it).
"""The WebSocket hand-off: serve a WebSocket on our own threads."""
from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from ..tls_io import recv_exclusive
from .drivers import GATE_KEY, REFUSAL_KEY, find_driver

log = logging.getLogger("server.websocket")

StartResponse = Callable[..., Any]


class HandshakeRejected(Exception):
    """The upgrade request is not a valid WebSocket handshake (HTTP 400)."""


class HandoffWebSocket:
    """A WebSocket served on our own thread, for python-engineio.

    Same interface as python-engineio's ``SimpleWebSocketWSGI``:
    ``HandoffWebSocket(handler, server)(environ, start_response)`` accepts
    the connection and runs ``handler(self)``; the handler calls
    :meth:`wait`, :meth:`send` and :meth:`close`.

    ``server`` is the python-engineio server: its ``max_http_buffer_size``
    caps an incoming message (close code 1009 beyond it) and its
    ``websockets`` registry, when present, lists this connection while open.

    When the server's driver cannot detach the connection (gunicorn or
    Werkzeug terminating TLS, gunicorn's sync worker) the WebSocket is served
    in the calling request thread instead, held for the connection's whole
    life as python-engineio does by default; a warning says so, once per
    server and reason.  WebSockets then count against the server's threads.

    ``compression=False`` declines permessage-deflate (as the Node
    socket.io server does by default): no zlib state per connection and no
    compression work per message.  ``deflate_context_takeover=False`` asks
    permessage-deflate clients to
    compress each message on its own: the zlib state (about 100 KiB per
    connection) is then freed after every message instead of kept for the
    connection's life, at some cost in compression of small messages.
    Pass it with ``functools.partial`` where the class is installed.
    """

    def __init__(self, handler: Callable[[HandoffWebSocket], Any], server: Any,
                 *, receive_bytes: int = 65536, close_timeout: float = 2.0,
                 deflate_context_takeover: bool = True, compression: bool = True) -> None:
        self._handler = handler
        self._compression = compression
        self._max_message_size: int | None = getattr(server, "max_http_buffer_size", None)
        self._registry = getattr(server, "websockets", None)
        self._receive_bytes = receive_bytes
        self._close_timeout = close_timeout
        self._deflate_context_takeover = deflate_context_takeover
        self._ws = WSConnection(ConnectionType.SERVER)
        self._lock = threading.Lock()
        self._fd_lock = threading.Lock()
        self._inbox: deque[str | bytes] = deque()
        self._parts: list[Any] = []
        self._parts_len = 0
        self._read_closed = False
        self._owned = True
        self._disposed = False
        #: the connection's socket; python-engineio sets its timeout.
        self.socket: socket.socket | None = None
        #: the code of the peer's Close frame, once received.
        self.close_code: int | None = None
        #: set when the connection is over and its socket released.
        self.done = threading.Event()
        #: told of each message sent and received by send()/wait() (the Admin
        #: UI's figures, server.admin_ui), when the session sets one
        self.observer: Any = None

    # -- the WSGI side ----------------------------------------------------

    def __call__(self, environ: dict[str, Any],
                 start_response: StartResponse) -> Iterable[bytes]:
        # Never return a list: python-engineio treats a list from the upgrade
        # path as packets to send in a polling response.
        driver = find_driver(environ)
        if driver is None:
            self._warn_once("no-driver", "WebSocket refused: no hand-off driver "
                            "recognises this WSGI server (SERVER_SOFTWARE=%r)",
                            environ.get("SERVER_SOFTWARE"))
            return _bad_request(start_response, "WebSocket is not available on this server")
        try:
            accept = self._handshake(environ)
        except HandshakeRejected as e:
            log.info("WebSocket handshake rejected: %s", e)
            return _bad_request(start_response, f"Bad WebSocket handshake: {e}")

        try:
            sock = driver.detach(environ)
        except OSError as e:  # e.g. out of file descriptors; the server's socket is intact
            log.warning("WebSocket hand-off failed on %s: %s", driver.NAME, e)
            environ[REFUSAL_KEY] = f"detaching failed: {e}"
            sock = None
        if sock is None:
            return self._serve_in_request_thread(driver, environ, start_response, accept)
        self.socket = sock
        if self._start(accept):
            self._serve_detached()
        return driver.release(environ, start_response)

    def _serve_detached(self) -> None:
        """Serve the detached socket (101 sent) without holding the caller."""
        assert self.socket is not None
        try:
            threading.Thread(target=self._run, daemon=True,
                             name=f"websocket-fd{self.socket.fileno()}").start()
        except RuntimeError:  # the process cannot start another thread
            log.exception("WebSocket dropped: cannot start its thread")
            self._finish()

    def _serve_in_request_thread(self, driver: Any, environ: dict[str, Any],
                                 start_response: StartResponse,
                                 accept: bytes) -> Iterable[bytes]:
        """Fallback: serve on the server's socket, holding the request thread."""
        reason = environ.get(REFUSAL_KEY, "the driver gave no reason")
        self._warn_once(f"{driver.NAME}:{reason}",
                        "WebSocket hand-off unavailable on %s (%s): serving WebSockets "
                        "in the server's request threads, one thread held per "
                        "connection", driver.NAME, reason)
        borrow = getattr(driver, "borrow", None)
        sock = borrow(environ) if borrow is not None else None
        if sock is None:
            return _bad_request(start_response, "WebSocket is not available on this server")
        self.socket = sock
        self._owned = False
        let_next_in = environ.pop(GATE_KEY, None)
        if let_next_in is not None:
            let_next_in()
        if self._start(accept):
            self._run()
        return driver.release(environ, start_response)

    def _handshake(self, environ: dict[str, Any]) -> bytes:
        """Check the upgrade request; return the 101 response to send."""
        if environ.get("SERVER_PROTOCOL") != "HTTP/1.1":
            raise HandshakeRejected(f"needs HTTP/1.1, got {environ.get('SERVER_PROTOCOL')!r}")
        # wsproto reads the handshake from the wire; rebuild it from environ.
        lines = ["GET / HTTP/1.1"]
        lines += [f"{key[5:].replace('_', '-')}: {value}"
                  for key, value in environ.items() if key.startswith("HTTP_")]
        try:
            self._ws.receive_data(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            requests = [e for e in self._ws.events() if isinstance(e, Request)]
        except (RemoteProtocolError, UnicodeEncodeError) as e:
            raise HandshakeRejected(str(e)) from e
        if not requests:
            raise HandshakeRejected("incomplete upgrade request")
        if not self._compression:
            return self._ws.send(AcceptConnection(extensions=[]))
        # permessage-deflate is used only if the client offers it
        takeover = self._deflate_context_takeover
        deflate = PerMessageDeflate(client_no_context_takeover=not takeover,
                                    server_no_context_takeover=not takeover)
        return self._ws.send(AcceptConnection(extensions=[deflate]))

    def _start(self, accept: bytes) -> bool:
        assert self.socket is not None
        try:
            self.socket.sendall(accept)
        except OSError as e:
            log.debug("WebSocket peer left during the handshake: %s", e)
            self._read_closed = True
            self._finish()
            return False
        if self._registry is not None:
            self._registry.add(self)
        return True

    def _run(self) -> None:
        try:
            self._handler(self)
        except Exception:
            log.exception("WebSocket handler failed")
        finally:
            self._finish()

    def _finish(self) -> None:
        """Close cleanly, release the socket, leave the registry (handler thread)."""
        self.close()
        sock = self.socket
        if sock is not None:
            # wait briefly for the peer's Close, so the TCP close is clean
            deadline = time.monotonic() + self._close_timeout
            try:
                sock.settimeout(self._close_timeout)
            except OSError:
                pass
            while (not self._read_closed and self._ws.state is not ConnectionState.CLOSED
                   and time.monotonic() < deadline and self._read_more()):
                pass
        with self._fd_lock:
            self._disposed = True
            if sock is not None:
                try:
                    if self._owned:
                        sock.close()
                    else:
                        sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if self._registry is not None:
            self._registry.discard(self)
        self.done.set()

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if self._registry is None or self._registry.note_once(key):
            log.warning(message, *args)

    # -- the python-engineio side -------------------------------------------

    def send(self, message: str | bytes) -> None:
        """Send one message; bytes go binary, anything else as text.

        Raises OSError when the connection is closed or the write fails.
        """
        with self._lock:
            self._send_locked(message)
        if self.observer is not None:
            self.observer.packet_out(len(message))

    def _send_locked(self, message: str | bytes) -> None:
        """send() for a caller that holds self._lock."""
        if isinstance(message, (bytes, bytearray, memoryview)):
            event: Message[Any] = BytesMessage(data=bytes(message))
        else:
            event = TextMessage(data=str(message))
        if self._ws.state is not ConnectionState.OPEN:
            raise OSError("WebSocket is closed")
        self._write(self._ws.send(event))

    def wait(self) -> str | bytes | None:
        """The next message from the peer; None once the connection is closing."""
        while True:
            if self._inbox:
                message = self._inbox.popleft()
                if self.observer is not None:
                    self.observer.packet_in(len(message))
                return message
            if self._read_closed or self._ws.state is not ConnectionState.OPEN:
                return None  # _finish reads the peer's Close, if it is still to come
            if not self._read_more():
                return None

    def _read_more(self) -> bool:
        """Read and process what the peer sent; False at end of stream."""
        assert self.socket is not None
        try:
            if isinstance(self.socket, ssl.SSLSocket):
                # never overlapping a write (see the design note)
                data = recv_exclusive(self.socket, self._lock, self._receive_bytes)
            else:
                data = self.socket.recv(self._receive_bytes)
        except OSError:  # reset, timeout, shut down by abort()
            data = b""
        if not data:
            self._read_closed = True
            return False
        self._receive(data)
        return True

    def close(self, code: int = CloseReason.NORMAL_CLOSURE, reason: str | None = None,
              timeout: float | None = None) -> None:
        """Send a Close frame (once); the connection ends when the peer answers.

        With ``timeout``, give up waiting for a writer that is stuck on a slow
        peer after that many seconds and abort the connection instead.
        """
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            self.abort()
            return
        try:
            if self._ws.state is ConnectionState.OPEN and self.socket is not None:
                self._write(self._ws.send(CloseConnection(code=code, reason=reason)))
        except OSError:
            pass  # the peer is gone; _write has aborted the connection
        finally:
            self._lock.release()

    def abort(self) -> None:
        """Cut the connection now: blocked reads and writes return at once."""
        with self._fd_lock:
            if self.socket is not None and not self._disposed:
                try:
                    self.socket.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    # -- internals ----------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        out = b""
        with self._lock:
            try:
                self._ws.receive_data(data)
                for event in self._ws.events():
                    if isinstance(event, Message):
                        if self._ws.state is ConnectionState.OPEN and not self._collect(event):
                            out += self._ws.send(CloseConnection(
                                code=CloseReason.MESSAGE_TOO_BIG,
                                reason="Message too big"))
                            break
                    elif isinstance(event, Ping):
                        if self._ws.state is ConnectionState.OPEN:
                            out += self._ws.send(event.response())
                    elif isinstance(event, CloseConnection):
                        # also a protocol error found by wsproto (code 1002/1007)
                        self.close_code = event.code
                        if self._ws.state in (ConnectionState.OPEN,
                                              ConnectionState.REMOTE_CLOSING):
                            out += self._ws.send(event.response())
                        self._read_closed = True
                        break
                if out:
                    self._write(out)
            except LocalProtocolError:
                self._read_closed = True
            except OSError:
                self._read_closed = True  # _write has aborted the connection

    def _collect(self, event: Message[Any]) -> bool:
        """Add a message fragment; False when the message grows past the cap."""
        self._parts.append(event.data)
        self._parts_len += len(event.data)
        if self._max_message_size is not None and self._parts_len > self._max_message_size:
            self._parts, self._parts_len = [], 0
            return False
        if event.message_finished:
            joiner: Any = "" if isinstance(event, TextMessage) else b""
            self._inbox.append(joiner.join(self._parts))
            self._parts, self._parts_len = [], 0
        return True

    def _write(self, data: bytes) -> None:
        """Write under self._lock; a failed write leaves a torn frame, so abort."""
        assert self.socket is not None
        try:
            self.socket.sendall(data)
        except OSError:
            self.abort()
            raise


def _bad_request(start_response: StartResponse, text: str) -> Iterable[bytes]:
    body = text.encode()
    start_response("400 Bad Request", [("Content-Type", "text/plain; charset=utf-8"),
                                       ("Content-Length", str(len(body)))])
    return (body,)
