# design:
#   Counters written on hot paths by many threads at once, read by /metrics.
#   Writers do plain int/float additions with no lock: under CPython's GIL an
#   ``x += 1`` on an int attribute or list slot is not interrupted in practice
#   (no call between the read and the write), and a metric that could at worst
#   miss an increment on a free-threaded build is worth more than a lock taken
#   per event.  Readers copy the figures without a lock; a scrape may see one
#   histogram a few observations ahead of another, never a bucket going down.
#   RefusalCounts is written off the hot path (a refused request) and keeps a
#   short lock because its keys are created on first use.
"""Plain counters for the operations endpoints (no third-party imports)."""
from __future__ import annotations

import bisect
import threading

# seconds; chosen for event handlers (a chat handler takes ~1 ms, a slow
# database call ~1 s); the last bucket is +Inf
BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                              0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    """Fixed buckets, counted with plain additions (see the design note)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...] = BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    def snapshot(self) -> tuple[list[tuple[str, int]], float]:
        """(cumulative ``(le, count)`` pairs ending with ``+Inf``, sum)."""
        counts = list(self.counts)
        total = self.total
        out, running = [], 0
        for bound, count in zip((*map(repr, self.bounds), "+Inf"), counts):
            running += count
            out.append((bound, running))
        return out, total


class EventStats:
    """What the Socket.IO server counts: ``SocketIOServer.stats``.

    ``events_in``: events received from clients and accepted for handling;
    ``packets_out``: Socket.IO packets sent to clients (events, acks, connect
    answers), one per recipient; ``events_dropped``: events dropped because
    the handler pool stayed full; ``events_rate_limited``: events refused by
    the per-connection event_rate; ``handler``/``wait``: seconds a handler ran
    and seconds its event waited in the pool's queue.
    """

    __slots__ = ("events_dropped", "events_in", "events_rate_limited", "handler",
                 "packets_out", "wait")

    def __init__(self) -> None:
        self.events_in = 0
        self.packets_out = 0
        self.events_dropped = 0
        self.events_rate_limited = 0
        self.handler = Histogram()
        self.wait = Histogram()

    def handled(self, waited: float, took: float) -> None:
        """One pool task finished: it waited ``waited`` s and ran ``took`` s."""
        self.wait.observe(waited)
        self.handler.observe(took)


class RefusalCounts:
    """Requests the security policy refused, by reason (``origin``, ``rate``...)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def add(self, reason: str) -> None:
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
