# design:
#   A handed-off WebSocket served by the Reactor instead of a thread.
#   The request thread does what HandoffWebSocket does (handshake, detach,
#   101), makes the socket non-blocking, lets the session adopt the connection
#   (no I/O) and asks the reactor to watch it; then it returns.
#   Socket ownership: reads happen only on the reactor thread (_on_ready).
#   Writes come from any thread (handler threads emitting, the reactor sending
#   pings and control frames), each under self._lock: wsproto encodes, then a
#   non-blocking send; what the kernel does not take is kept in self._out,
#   in order, and the reactor writes it when the socket is writable.  Nobody
#   ever blocks on a slow peer: past MAX_BUFFERED unsent bytes the connection
#   is cut.  The selector is only touched on the reactor thread; other threads
#   ask for write interest with call_soon.
#   Lock order: self._lock, then self._fd_lock (as in HandoffWebSocket).
#   Backpressure: after a read, when the server's intake (the handler pool)
#   is over its bound, the connection stops being read until there is room;
#   its TCP window fills and only that client waits.
#   Close: a Close frame sent (close()) or received, the end of the stream, or
#   abort() ends the connection on the reactor thread: once what is buffered
#   is written (or close_timeout passes) the socket is closed, the registry
#   forgets the connection, `done` is set and the session hears of it once.
"""A WebSocket that costs no thread while open: served by the Reactor."""
from __future__ import annotations

import logging
import selectors
import threading
from collections.abc import Callable
from typing import Any

from wsproto.connection import ConnectionState

from .handoff import HandoffWebSocket
from .reactor import Reactor, Timer

log = logging.getLogger("server.websocket")

#: unsent bytes one connection may have queued before it is cut: a client
#: that stopped reading must not make the server hold its backlog forever
MAX_BUFFERED = 16 * 1024 * 1024

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


class _Released:
    """Stands in for a disposed connection's session: late calls do nothing."""

    def on_websocket_message(self, message: str | bytes) -> None:
        pass

    def on_websocket_closed(self) -> None:
        pass


def _released_handler(ws: HandoffWebSocket) -> None:
    pass


class EventedWebSocket(HandoffWebSocket):
    """HandoffWebSocket whose detached connection is served by a Reactor.

    ``session`` receives the connection: ``session.adopt_websocket(ws)`` in
    the request thread, then ``session.on_websocket_message(message)`` for
    each message and ``session.on_websocket_closed()`` once at the end, both
    on the reactor thread, which they must never block.  ``intake``, when
    given, has ``saturated`` and ``notify_when_space(callback)``: reading
    pauses while it is saturated.  When the connection cannot be detached
    (TLS in the WSGI server...) it is served like a HandoffWebSocket, by
    ``handler`` in the request thread.
    """

    def __init__(self, handler: Callable[[HandoffWebSocket], Any], server: Any, *,
                 session: Any, reactor: Reactor, intake: Any = None, **kwargs: Any) -> None:
        super().__init__(handler, server, **kwargs)
        self._session = session
        self._reactor = reactor
        self._intake = intake
        self._evented = False
        self._out = bytearray()
        self._registered = False
        self._events = 0
        self._paused = False
        self._ending = False
        self._notified = False
        self._deadline: Timer | None = None

    # -- the request thread ----------------------------------------------------

    def _serve_detached(self) -> None:
        assert self.socket is not None
        self.socket.setblocking(False)
        self._evented = True
        self._session.adopt_websocket(self)
        self._reactor.call_soon(self._update_interest)

    # -- any thread ------------------------------------------------------------

    @property
    def send_lock(self) -> threading.Lock:
        """Held by whoever writes; a session holds it to queue-or-send in order."""
        return self._lock

    def send_locked(self, message: str | bytes) -> None:
        """:meth:`send` for a caller holding :attr:`send_lock`."""
        self._send_locked(message)

    def close(self, code: int = 1000, reason: str | None = None,
              timeout: float | None = None) -> None:
        super().close(code, reason, timeout)  # evented: queues the Close frame at once
        if self._evented:
            self._reactor.call_soon(self._await_peer_close)

    def abort(self) -> None:
        if not self._evented:
            super().abort()
            return
        self._reactor.call_soon(self._dispose)

    def _write(self, data: bytes) -> None:
        """Write under self._lock: what the kernel does not take waits in order."""
        if not self._evented:
            super()._write(data)
            return
        if self._disposed:
            raise OSError("WebSocket is closed")
        if self._out:
            self._out += data
        else:
            assert self.socket is not None
            try:
                sent = self.socket.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self.abort()
                raise
            if sent < len(data):
                self._out += data[sent:]
                self._reactor.call_soon(self._update_interest)
        if len(self._out) > MAX_BUFFERED:
            log.warning("WebSocket cut: the client stopped reading (%d bytes unsent)",
                        len(self._out))
            self._out.clear()
            self.abort()
            raise OSError("WebSocket send buffer full")

    # -- the reactor thread ----------------------------------------------------

    def _update_interest(self) -> None:
        if self._disposed or self.socket is None:
            return
        # once ending, keep reading (the peer's Close or the end of the stream)
        # until the read side is over: an ended stream stays readable forever
        reading = not self._read_closed and (self._ending or not self._paused)
        events = (_READ if reading else 0) | (_WRITE if self._out else 0)
        if events == self._events and self._registered:
            return
        try:
            if not self._registered:
                if events:
                    self._reactor.register(self.socket, events, self._on_ready)
                    self._registered = True
            elif events:
                self._reactor.modify(self.socket, events, self._on_ready)
            else:
                self._reactor.unregister(self.socket)
                self._registered = False
        except (OSError, ValueError, KeyError) as exc:  # the descriptor went away
            log.warning("WebSocket dropped: the reactor cannot watch its socket (%r)", exc)
            self._dispose()
            return
        self._events = events

    def _on_ready(self, mask: int) -> None:
        if mask & _WRITE:
            self._flush()
        if mask & _READ and not self._disposed:
            self._on_readable()

    def _flush(self) -> None:
        failed = False
        with self._lock:
            out = self._out
            while out and not self._disposed:
                assert self.socket is not None
                try:
                    sent = self.socket.send(out)
                except BlockingIOError:
                    break
                except OSError:  # the peer is gone: nothing more can be written
                    out.clear()
                    failed = True
                    break
                del out[:sent]
            drained = not out
        if failed:
            self._read_closed = True
            self._end()
        elif self._ending and drained and self._read_closed:
            self._dispose()
        else:
            self._update_interest()

    def _on_readable(self) -> None:
        assert self.socket is not None
        try:
            data = self.socket.recv(self._receive_bytes)
        except BlockingIOError:
            return
        except OSError:  # reset by the peer
            data = b""
        if not data:
            self._read_closed = True
        else:
            self._receive(data)  # answers pings and Close under self._lock
        inbox = self._inbox
        while inbox and not self._notified:
            message = inbox.popleft()
            try:
                self._session.on_websocket_message(message)
            except Exception:
                log.exception("WebSocket message handling failed")
        if self._read_closed or self._ws.state is not ConnectionState.OPEN:
            self._end()
        elif self._intake is not None and self._intake.saturated:
            self._paused = True
            self._update_interest()
            self._intake.notify_when_space(lambda: self._reactor.call_soon(self._resume))

    def _resume(self) -> None:
        if self._paused:
            self._paused = False
            self._update_interest()

    def _await_peer_close(self) -> None:
        # our Close is on its way: give the peer close_timeout to answer
        if not self._ending:
            self._ending = True
            self._notify_session()
            self._deadline = self._reactor.call_later(self._close_timeout, self._dispose)
            self._update_interest()

    def _end(self) -> None:
        """The read side is over: write what is left, then release."""
        self._notify_session()
        if not self._ending:
            self._ending = True
            self._deadline = self._reactor.call_later(self._close_timeout, self._dispose)
        if not self._out or self._disposed:
            self._dispose()
        else:
            self._read_closed = True
            self._update_interest()

    def _notify_session(self) -> None:
        if not self._notified:
            self._notified = True
            self._inbox.clear()
            try:
                self._session.on_websocket_closed()
            except Exception:
                log.exception("WebSocket close handling failed")

    def _dispose(self) -> None:
        if self._disposed:
            return
        if self._registered and self.socket is not None:
            self._reactor.unregister(self.socket)
            self._registered = False
        with self._lock, self._fd_lock:
            self._disposed = True
            self._out.clear()
            if self.socket is not None:
                try:
                    self.socket.close()
                except OSError:
                    pass
        if self._deadline is not None:
            self._deadline.cancel()
        if self._registry is not None:
            self._registry.discard(self)
        self.done.set()
        self._notify_session()
        # the session holds this object and this object the session: part now,
        # so that both are freed by reference counting, not by a full collection
        self._session = _Released()
        self._handler = _released_handler
