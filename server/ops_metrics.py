# design:
#   Runs only in the thread that answers a scrape of ``metrics_path``.  It reads
#   figures other threads write (see server.ops_stats): dict snapshots are taken
#   with ``list(d.items())``/``dict.copy()``, which CPython completes without
#   letting another thread in, and plain ints are read as they are.  The only
#   locks taken are the short ones of the security policy's tally, refusal
#   counts and the WebSocket registry, never held while calling out.
#   prometheus-client is optional: this module is imported only when metrics
#   are on, and every import of it is here.
"""Prometheus metrics for one server (docs/operations.md lists them)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

PREFIX = "socketio_"


def _transport(session: Any) -> str:
    return "websocket" if getattr(session, "upgraded", False) else "polling"


class ServerCollector(Collector):
    """Collects the figures of one Socket.IO server at scrape time."""

    def __init__(self, server: Any, policy: Any, max_connections: int) -> None:
        self.server = server
        self.policy = policy
        self.max_connections = max_connections

    def describe(self) -> list[Metric]:
        # no up-front collect at registration: names cannot clash in a
        # registry of our own
        return []

    def collect(self) -> Iterator[Metric]:
        yield from self._connections()
        yield from self._events()
        yield from self._pool()
        if self.policy is not None:
            yield from self._policy()

    def _connections(self) -> Iterator[Metric]:
        eio = self.server.eio
        sessions = dict(eio.sockets)
        by_transport = {"polling": 0, "websocket": 0}
        for session in sessions.values():
            # a closed WebSocket session waits in eio.sockets for engineio's sweep
            if not getattr(session, "closed", False):
                by_transport[_transport(session)] += 1
        family = GaugeMetricFamily(
            PREFIX + "engineio_sessions", "Open Engine.IO sessions, by transport.",
            labels=["transport"])
        for transport, count in by_transport.items():
            family.add_metric([transport], count)
        yield family
        family = GaugeMetricFamily(
            PREFIX + "clients", "Socket.IO clients connected, by namespace and transport.",
            labels=["namespace", "transport"])
        manager = self.server.manager
        for namespace in list(manager.rooms):
            counts = {"polling": 0, "websocket": 0}
            try:
                members = list(manager.get_participants(namespace, None))
            except KeyError:  # the namespace's last client left meanwhile
                members = []
            for _sid, eio_sid in members:
                counts[_transport(sessions.get(eio_sid))] += 1
            for transport, count in counts.items():
                family.add_metric([namespace, transport], count)
        yield family
        yield GaugeMetricFamily(
            PREFIX + "max_connections",
            "Most Engine.IO sessions this process accepts (max_connections).",
            value=self.max_connections)
        yield GaugeMetricFamily(
            PREFIX + "websocket_connections",
            "WebSocket connections handed off by the WSGI server (served by the reactor; "
            "one thread each with websocket_io='threads').",
            value=eio.websockets.count())

    def _events(self) -> Iterator[Metric]:
        stats = getattr(self.server, "stats", None)
        if stats is None:  # a server without the counters (see docs/operations.md)
            return
        yield CounterMetricFamily(PREFIX + "events_received",
                                  "Events received from clients and accepted for handling.",
                                  value=stats.events_in)
        yield CounterMetricFamily(PREFIX + "packets_sent",
                                  "Socket.IO packets sent to clients, one per recipient.",
                                  value=stats.packets_out)
        dropped = CounterMetricFamily(
            PREFIX + "events_dropped",
            "Events not handled: handler queue full, or over the connection's event_rate.",
            labels=["reason"])
        dropped.add_metric(["handler_queue_full"], stats.events_dropped)
        dropped.add_metric(["event_rate"], stats.events_rate_limited)
        yield dropped
        for name, histogram, text in (
                ("handler_duration_seconds", stats.handler,
                 "Seconds an event handler ran (handler pool tasks)."),
                ("handler_wait_seconds", stats.wait,
                 "Seconds an event waited in the handler queue before a thread took it.")):
            buckets, total = histogram.snapshot()
            yield HistogramMetricFamily(PREFIX + name, text, buckets=buckets, sum_value=total)

    def _pool(self) -> Iterator[Metric]:
        pool = self.server.handler_pool
        yield GaugeMetricFamily(PREFIX + "handler_threads", "Threads in the handler pool.",
                                value=pool.size)
        yield GaugeMetricFamily(PREFIX + "handler_threads_busy",
                                "Handler pool threads running a handler now.", value=pool.busy)
        yield GaugeMetricFamily(PREFIX + "handler_queue_length",
                                "Events waiting for, or being run by, a handler thread.",
                                value=pool.pending)
        yield GaugeMetricFamily(PREFIX + "handler_queue_capacity",
                                "Most events that may wait (handler_queue).",
                                value=pool.max_pending)

    def _policy(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            PREFIX + "requests_refused",
            "Requests the security policy refused, by reason (handshakes and others).",
            labels=["reason"])
        for reason, count in sorted(self.policy.refused.snapshot().items()):
            family.add_metric([reason], count)
        yield family
        _total, addresses = self.policy.tally.counts()
        yield GaugeMetricFamily(PREFIX + "client_addresses",
                                "Distinct client addresses with an open connection.",
                                value=addresses)


def build_registry(server: Any, policy: Any, max_connections: int) -> CollectorRegistry:
    """A registry of this server's own (never prometheus-client's global one)."""
    from prometheus_client import GCCollector, PlatformCollector, ProcessCollector

    registry = CollectorRegistry()
    registry.register(ServerCollector(server, policy, max_connections))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry, accept: str) -> tuple[bytes, str]:
    """The exposition body and its content type, as the scraper asked (Accept)."""
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
