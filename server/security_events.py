# design:
#   Two limits inside an Engine.IO session, owned by the SocketIOServer.
#   - EventBudget: a token bucket per Engine.IO session (all its namespaces
#     share it), taken by the thread that decodes the client's packets (a
#     polling POST's request thread, or a WebSocket's reader thread) before an
#     event is queued for a handler.  One lock, held for a dict lookup and a
#     few float operations; never while sending, logging or calling handlers.
#   - ConnectDeadlines: sessions that must connect a namespace before a
#     deadline.  One daemon timer thread for the whole server (started with
#     the first session, never one per connection) sleeps until the earliest
#     deadline and calls ``expire(eio_sid)`` outside the lock, and ends when
#     no deadline is left.  Deadlines are opened in time order with one
#     timeout, so a FIFO deque stays sorted and a new one is never the
#     earliest: the sleeping thread need not be woken for it.
#   On close: EventBudget.forget() drops a session's bucket (called from the
#   Engine.IO disconnect); ConnectDeadlines.stop() ends the timer thread.
"""Per-connection event rate and the Socket.IO connect timeout (docs/security.md)."""
from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .logs import RateLimitedLog

__all__ = ["ADMIT", "CLOSE", "DROP", "ConnectDeadlines", "EventBudget", "EventGuard"]

log = logging.getLogger("server.security")

ADMIT, DROP, CLOSE = 0, 1, 2


class _Bucket:
    __slots__ = ("stamp", "strikes", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.strikes = 0.0
        self.stamp = stamp


class EventBudget:
    """``rate`` events per second per session, ``burst`` at once.

    An event over budget is dropped and counts a strike; strikes drain at
    ``rate`` per second like the tokens refill.  More than ``2 * burst``
    strikes (a client sending three times what it may, sustained or at once)
    asks for the session to be closed.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: float | None = None) -> int:
        """ADMIT, DROP or CLOSE for one more event from ``key``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(self.burst, now)
            refill = (now - bucket.stamp) * self.rate
            bucket.stamp = now
            bucket.tokens = min(self.burst, bucket.tokens + refill)
            bucket.strikes = max(0.0, bucket.strikes - refill)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return ADMIT
            bucket.strikes += 1.0
            return CLOSE if bucket.strikes > 2 * self.burst else DROP

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may send one more event (an estimate)."""
        with self._lock:
            bucket = self._buckets.get(key)
            missing = 1.0 - bucket.tokens if bucket is not None else 0.0
        return round(max(0.0, missing) / self.rate, 3)

    def forget(self, key: str) -> None:
        with self._lock:
            self._buckets.pop(key, None)

    def __len__(self) -> int:
        return len(self._buckets)


class ConnectDeadlines:
    """Calls ``expire(key)`` ``timeout`` seconds after ``opened(key)``, from one thread."""

    def __init__(self, timeout: float, expire: Callable[[str], None]) -> None:
        self.timeout = float(timeout)
        self._expire = expire
        self._cond = threading.Condition()
        self._due: collections.deque[tuple[float, str]] = collections.deque()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def opened(self, key: str) -> None:
        with self._cond:
            if self._stopped:
                return
            self._due.append((time.monotonic() + self.timeout, key))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="server-connect-timeout")
                self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._due.clear()
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._due)

    @property
    def running(self) -> bool:
        """Whether the timer thread is alive (it ends when nothing is due)."""
        with self._cond:
            return self._thread is not None

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    if not self._due:
                        # idle: end; the next opened() starts a new thread
                        self._thread = None
                        return
                    wait = self._due[0][0] - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._stopped:
                    return
                now = time.monotonic()
                expired = []
                while self._due and self._due[0][0] <= now:
                    expired.append(self._due.popleft()[1])
            for key in expired:
                try:
                    self._expire(key)
                except Exception:  # one bad session must not end the timer
                    log.exception("closing session %s at its connect timeout failed", key)


class EventGuard:
    """The event rate and connect timeout of one SocketIOServer.

    ``server`` is the python-socketio Server (a SocketIOServer); only its
    public methods and its manager's lookups are used, plus ``_send_packet``
    for the error acknowledgement, which python-socketio's own ack path uses.
    """

    def __init__(self, server: Any, event_rate: float | None, event_burst: int,
                 connect_timeout: float | None) -> None:
        self.server = server
        self.event_rate = event_rate
        self.event_burst = event_burst
        self.connect_timeout = connect_timeout
        self.budget = EventBudget(event_rate, event_burst) if event_rate else None
        self.deadlines = (ConnectDeadlines(connect_timeout, self._connect_expired)
                          if connect_timeout else None)
        self._drop_log = RateLimitedLog(log, interval=10.0)
        self._close_log = RateLimitedLog(log, interval=10.0)
        self._timeout_log = RateLimitedLog(log, interval=10.0)

    # -- hooks called by the SocketIOServer -----------------------------------
    def session_opened(self, eio_sid: str) -> None:
        if self.deadlines is not None:
            self.deadlines.opened(eio_sid)

    def session_closed(self, eio_sid: str) -> None:
        if self.budget is not None:
            self.budget.forget(eio_sid)

    def stop(self) -> None:
        if self.deadlines is not None:
            self.deadlines.stop()

    def admit(self, eio_sid: str, namespace: str, ack_id: Any, data: Any) -> bool:
        """True if the event may be handled; otherwise it has been answered."""
        if self.budget is None:
            return True
        verdict = self.budget.take(eio_sid)
        if eio_sid not in self.server.environ:
            # the session ended meanwhile; python-socketio drops its environ
            # before session_closed() runs, so either that forget() or this
            # one frees the bucket this take() may have created
            self.budget.forget(eio_sid)
        if verdict == ADMIT:
            return True
        address = self._address(eio_sid)
        event = data[0] if isinstance(data, list) and data else None
        if verdict == DROP:
            self._drop_log.warning(
                "dropped event %r from %s (%s): more than event_rate=%s/s "
                "(burst %s)", event, eio_sid, address, self.event_rate, self.event_burst)
            if ack_id is not None:
                self._ack_error(eio_sid, namespace, ack_id)
            return False
        self._close_log.warning(
            "disconnecting %s (%s): sent three times its event budget "
            "(event_rate=%s/s, event_burst=%s)", eio_sid, address, self.event_rate,
            self.event_burst)
        if ack_id is not None:
            self._ack_error(eio_sid, namespace, ack_id)
        self._disconnect_namespaces(eio_sid)
        return False

    # -- internals --------------------------------------------------------------
    def _address(self, eio_sid: str) -> str:
        environ = self.server.environ.get(eio_sid) or {}
        return str(environ.get("REMOTE_ADDR", "?"))

    def _ack_error(self, eio_sid: str, namespace: str, ack_id: Any) -> None:
        from socketio import packet

        assert self.budget is not None
        value = {"error": "rate_limited",
                 "message": f"more than {self.event_rate} events per second",
                 "retry_after": self.budget.retry_after(eio_sid)}
        self.server._send_packet(eio_sid, self.server.packet_class(
            packet.ACK, namespace=namespace, id=ack_id, data=[value]))

    def _namespaces(self, eio_sid: str) -> list[tuple[str, str]]:
        manager = self.server.manager
        found = []
        for namespace in list(manager.get_namespaces()):
            sid = manager.sid_from_eio_sid(eio_sid, namespace)
            if sid is not None:
                found.append((namespace, sid))
        return found

    def _disconnect_namespaces(self, eio_sid: str) -> None:
        # a Socket.IO DISCONNECT per namespace: the official clients then do
        # not reconnect ("io server disconnect"); closing the Engine.IO session
        # here would lose the packet on polling, so the session gets the
        # connect timeout again, which closes it if the client lingers
        for namespace, sid in self._namespaces(eio_sid):
            self.server.disconnect(sid, namespace=namespace, ignore_queue=True)
        self.session_opened(eio_sid)

    def _connect_expired(self, eio_sid: str) -> None:
        if eio_sid not in self.server.environ or self._namespaces(eio_sid):
            return  # gone already, or connected in time
        self._timeout_log.warning(
            "closing session %s (%s): no Socket.IO CONNECT within connect_timeout=%ss",
            eio_sid, self._address(eio_sid), self.connect_timeout)
        self.server.eio.disconnect(eio_sid)
