# design:
#   Shared by every WSGI server thread of the process.  Each structure has one
#   lock, held only for a few dict operations: no I/O, no logging, no calls out
#   while holding it, and no structure's lock is taken under another's.
#   ConnectionTally counts, per client address, Engine.IO sessions that are
#   open plus handshakes in flight.  A handshake request reserves a slot when it
#   is admitted; if it opens a session (``opened``), the slot passes to that
#   session until ``closed``; otherwise the slot is released when the response
#   is closed.  So concurrent handshakes cannot overshoot a cap between the
#   check and the session's creation.
"""Limits: handshake rate per client (token buckets), connection caps, log rate."""
from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_FALLBACK_MAX_CONNECTIONS = 10_000


def default_max_connections() -> int:
    """``max_connections=None``: half of what the file-descriptor limit leaves.

    Each connection costs a socket plus, while it is being served, a little
    more (logs, pipes); 64 descriptors stay free for the process itself.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return _FALLBACK_MAX_CONNECTIONS
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return _FALLBACK_MAX_CONNECTIONS
    return max(1, (soft - 64) // 2)


class HandshakeRate:
    """A token bucket per client address: ``rate`` per second, ``burst`` deep."""

    def __init__(self, rate: float, burst: int, max_clients: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> float:
        """0.0 if ``key`` may proceed now, else the seconds until it may."""
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > self.max_clients:
                    self._forget_full(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        # a full bucket carries no information: drop those; if every client is
        # active (a flood from many addresses), start afresh rather than grow
        full = [k for k, (t, at) in self._buckets.items()
                if t + (now - at) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) > self.max_clients:
            self._buckets.clear()


@dataclass
class Reservation:
    """A slot held by one admitted handshake request."""

    client: str
    consumed: bool = field(default=False)


class ConnectionTally:
    """Open sessions (and handshakes in flight) per client and in total."""

    def __init__(self, per_client: int | None, total: int | None) -> None:
        self.per_client = per_client
        self.total = total
        self._lock = threading.Lock()
        self._count: dict[str, int] = {}
        self._sessions: dict[str, str] = {}  # sid -> client
        self._all = 0

    def reserve(self, client: str, per_client: bool = True) -> Reservation | str:
        """A Reservation, or ``'client'`` / ``'total'`` naming the cap reached.

        ``per_client=False`` counts the connection but exempts it from the
        per-client cap (loopback peers: a local proxy speaks for everyone).
        """
        with self._lock:
            if self.total is not None and self._all >= self.total:
                return "total"
            if per_client and self.per_client is not None \
                    and self._count.get(client, 0) >= self.per_client:
                return "client"
            self._count[client] = self._count.get(client, 0) + 1
            self._all += 1
        return Reservation(client)

    def release(self, reservation: Reservation) -> None:
        """The handshake request ended; free its slot unless a session took it."""
        with self._lock:
            if reservation.consumed:
                return
            reservation.consumed = True
            self._drop(reservation.client)

    def opened(self, sid: str, client: str, reservation: Reservation | None) -> None:
        with self._lock:
            if sid in self._sessions:
                return
            if reservation is not None and not reservation.consumed:
                reservation.consumed = True
            else:  # opened without passing through the policy: count it anyway
                self._count[client] = self._count.get(client, 0) + 1
                self._all += 1
            self._sessions[sid] = client

    def closed(self, sid: str) -> None:
        with self._lock:
            client = self._sessions.pop(sid, None)
            if client is not None:
                self._drop(client)

    def _drop(self, client: str) -> None:
        left = self._count.get(client, 0) - 1
        if left > 0:
            self._count[client] = left
        else:
            self._count.pop(client, None)
        self._all = max(0, self._all - 1)

    @property
    def open(self) -> int:
        """Sessions + handshakes in flight, read without the lock (one int, for /readyz)."""
        return self._all

    def counts(self) -> tuple[int, int]:
        """(sessions + handshakes in flight in total, clients with any)."""
        with self._lock:
            return self._all, len(self._count)


def retry_after(seconds: float) -> str:
    """A Retry-After value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


class RefusalLog:
    """One warning line per key (an origin, a client) per ``interval`` seconds."""

    def __init__(self, logger: logging.Logger, interval: float = 60.0,
                 max_keys: int = 4096) -> None:
        self.logger = logger
        self.interval = interval
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], list[float | int]] = {}  # key -> [until, muted]

    def warning(self, kind: str, key: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        with self._lock:
            entry = self._seen.get((kind, key))
            if entry is not None and now < entry[0]:
                entry[1] += 1
                return
            muted = int(entry[1]) if entry is not None else 0
            if len(self._seen) >= self.max_keys:
                self._seen.clear()  # a flood of distinct keys: forget, stay bounded
            self._seen[(kind, key)] = [now + self.interval, 0]
        if muted:
            message += " (%d more like this since the last line)"
            args = (*args, muted)
        self.logger.warning(message, *args)
