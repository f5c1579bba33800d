# design:
#   python-socketio's threading server with two additions of ours.
#   1. Whole-packet sends.  A Socket.IO packet with binary attachments becomes
#      several Engine.IO packets; python-socketio sends them one by one, so two
#      threads emitting to the same client can interleave them and the client's
#      decoder sees a corrupt stream.  Every send to one client takes that
#      client's lock (one of a fixed set of striped locks, so there is no
#      per-client bookkeeping to leak); the lock is held only while packets are
#      queued on the Engine.IO socket, never while application code runs.
#   2. No application code on the reactor.  A WebSocket served by the
#      reactor (websocket_io='events') delivers its messages on the reactor
#      thread: they are decoded there, and everything that runs handlers
#      (connect, event, ack, disconnect) goes to the handler pool, keyed by
#      (client, namespace) so that one namespace's packets keep their order
#      (a connect handler finishes before that namespace's first event).
#      Other transports dispatch as python-socketio does.
#   3. An in-memory transport for SocketIOTestClient.  A test client registers
#      a receiver under its Engine.IO sid; packets for that sid go to the
#      receiver instead of Engine.IO, and its events are handled synchronously
#      so a test sees acks at once.  Registration lives on the server instance.
"""Socket.IO layer: python-socketio's ``Server`` with thread-safe sends."""
from __future__ import annotations

import functools
import logging
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from .admin_ui import AdminTraffic
from .dispatch import HandlerPool
from .engine import EngineServer
from .engine_socket import EngineSocket
from .logs import RateLimitedLog
from .ops_stats import EventStats
from .security_events import EventGuard

log = logging.getLogger("server")

_LOCK_STRIPES = 256
#: binary attachments one packet may announce (python-socketio sets no bound)
MAX_ATTACHMENTS = 64


def _event_kind(namespace: str, data: Any) -> tuple[str, str] | None:
    """What the handler pool learns CPU cost by: (namespace, event name)."""
    if isinstance(data, list) and data and isinstance(data[0], str):
        return (namespace, data[0])
    return None


class SocketIOServer(socketio.Server):
    """python-socketio's server, threading mode, safe to emit from any thread."""

    def __init__(self, handler_threads: int = 32, handler_queue: int = 10_000,
                 ordered_handlers: bool = True, event_rate: float | None = 100.0,
                 event_burst: int = 200, connect_timeout: float | None = 45.0,
                 cpu_handlers: int | None = 1, **kwargs: Any) -> None:
        self.handler_pool = HandlerPool(size=handler_threads, max_pending=handler_queue,
                                        ordered=ordered_handlers, cpu_handlers=cpu_handlers)
        self._busy_warning = RateLimitedLog(log, interval=10.0)
        self._protocol_warning = RateLimitedLog(log, interval=10.0)
        self._send_locks = tuple(threading.RLock() for _ in range(_LOCK_STRIPES))
        # per thread: eio_sid -> attachments still to send under its lock
        self._pending_attachments = threading.local()
        self._in_call = threading.local()  # set while python-socketio's call() emits
        self._memory_clients: dict[str, Callable[[Any], None]] = {}
        # per-session event rate and connect timeout (server/security_events.py)
        self.event_guard = EventGuard(self, event_rate, event_burst, connect_timeout)
        self.stats = EventStats()  # figures for /metrics (server/ops_metrics.py)
        super().__init__(**kwargs)
        self.eio.intake = self.handler_pool  # reactor WebSockets pause while it is full

    def _engineio_server_class(self) -> type:
        return EngineServer

    def instrument(self, *args: Any, **kwargs: Any) -> Any:
        """python-socketio's Admin UI instrumentation, also counting the traffic
        of our own session paths (server.admin_ui)."""
        admin = super().instrument(*args, **kwargs)
        self.eio.observer = AdminTraffic(admin)
        return admin

    def _lock_for(self, eio_sid: str) -> threading.RLock:
        return self._send_locks[zlib.crc32(eio_sid.encode()) % _LOCK_STRIPES]

    def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        self.stats.packets_out += 1
        encoded = pkt.encode()
        parts = encoded if isinstance(encoded, list) else [encoded]
        receiver = self._memory_clients.get(eio_sid)
        if receiver is not None:
            for part in parts:
                receiver(part)
            return
        with self._lock_for(eio_sid):
            for part in parts:
                self.eio.send(eio_sid, part)

    def _send_eio_packet(self, eio_sid: str, eio_pkt: Any) -> None:
        # python-socketio's manager sends a binary packet as a header followed
        # by its attachments, one call each, from one thread: the header takes
        # the client's lock and the last attachment releases it, so another
        # thread's packet can never land in between.
        if isinstance(eio_pkt.data, str):  # a packet, not one of its binary attachments
            self.stats.packets_out += 1
        receiver = self._memory_clients.get(eio_sid)
        if receiver is not None:
            if eio_pkt.packet_type == eio_packet.MESSAGE:
                receiver(eio_pkt.data)
            return
        lock = self._lock_for(eio_sid)
        pending = self._pending_attachments.__dict__
        data = eio_pkt.data
        if pending.get(eio_sid):
            try:
                self.eio.send_packet(eio_sid, eio_pkt)
            finally:
                pending[eio_sid] -= 1
                if not pending[eio_sid]:
                    del pending[eio_sid]
                    lock.release()
            return
        attachments = _attachment_count(data)
        lock.acquire()
        try:
            self.eio.send_packet(eio_sid, eio_pkt)
        except BaseException:
            lock.release()
            raise
        if attachments:
            pending[eio_sid] = attachments  # released by the last attachment
        else:
            lock.release()

    def _handle_event(self, eio_sid: str, namespace: str, id: Any, data: Any,
                      queued: float | None = None) -> None:
        """Run (or queue) an event; ``queued`` is set when already on a pool thread."""
        namespace = namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if not self.manager.is_connected(sid, namespace):
            self.logger.warning("%s is not connected to namespace %s", sid, namespace)
            return None
        # in-memory test clients are exempt: a test may emit in a tight loop
        if (eio_sid not in self._memory_clients
                and not self.event_guard.admit(eio_sid, namespace, id, data)):
            self.stats.events_rate_limited += 1
            return None
        self.stats.events_in += 1
        if queued is not None:  # dispatched from the reactor: this is a pool thread
            self._run_event(sid, eio_sid, data, namespace, id, queued)
            return None
        if not self.async_handlers or eio_sid in self._memory_clients:
            # in-memory test clients are served synchronously, so that emit()
            # returns with the acknowledgement already received
            self._handle_event_internal(self, sid, eio_sid, data, namespace, id)
            return None

        run = functools.partial(self._run_event, sid, eio_sid, data, namespace, id,
                                time.perf_counter())
        # one queue per Socket.IO socket (client and namespace): a client's
        # events keep their order, and a slow handler in one namespace does not
        # hold up the client's other namespaces
        if not self.handler_pool.submit(sid, run, kind=_event_kind(namespace, data)):
            self.stats.events_dropped += 1
            self._busy_warning.warning(
                "handler pool full (%d events waiting): dropped event %r from %s; "
                "raise handler_threads/handler_queue or make handlers faster",
                self.handler_pool.pending, data[0] if data else None, sid)
        return None

    def _run_event(self, sid: str, eio_sid: str, data: Any, namespace: str, id: Any,
                   queued: float) -> None:
        """Run an event's handler on a pool thread, timing its wait and its run."""
        started = time.perf_counter()
        try:
            self._handle_event_internal(self, sid, eio_sid, data, namespace, id)
        finally:
            self.stats.handled(started - queued, time.perf_counter() - started)

    def shutdown(self) -> None:
        super().shutdown()
        self.handler_pool.stop()
        self.event_guard.stop()

    def _handle_eio_connect(self, eio_sid: str, environ: dict) -> Any:
        ret = super()._handle_eio_connect(eio_sid, environ)
        if eio_sid not in self._memory_clients:
            self.event_guard.session_opened(eio_sid)  # the connect timeout starts
        return ret

    def _handle_eio_disconnect(self, eio_sid: str, reason: Any = None) -> Any:
        if self.eio.on_reactor():
            # disconnect handlers are application code: never on the reactor
            self.handler_pool.submit((eio_sid, None), lambda: self._disconnected(eio_sid, reason),
                                     wait=False)
            return None
        return self._disconnected(eio_sid, reason)

    def _disconnected(self, eio_sid: str, reason: Any) -> Any:
        try:
            return super()._handle_eio_disconnect(eio_sid, reason)
        finally:
            self.event_guard.session_closed(eio_sid)

    def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        """Dispatch one Engine.IO message; a malformed one closes the session.

        Mirrors python-socketio 5.x's own dispatch (pinned by
        tests/test_versions.py), with decoding separated from handling: a
        packet that does not decode is the client's protocol error, answered
        by closing its session with one rate-limited warning, never a
        traceback per message.  Errors raised by handlers are not caught here.
        """
        partial = self._binary_packet.get(eio_sid)
        try:
            if partial is not None:
                # attachments together may not exceed one message's limit
                size = len(data) + sum(len(a) for a in partial.attachments)
                if size > self.eio.max_http_buffer_size:
                    self._protocol_error(eio_sid, "binary attachments over max_http_buffer_size")
                    return
                complete = partial.add_attachment(data)
                pkt = partial
            else:
                pkt = self.packet_class(encoded_packet=data)
                complete = not pkt.attachment_count
                if pkt.attachment_count > MAX_ATTACHMENTS:
                    self._protocol_error(
                        eio_sid, f"{pkt.attachment_count} binary attachments announced "
                                 f"(at most {MAX_ATTACHMENTS})")
                    return
        except Exception as exc:  # python-socketio raises several kinds here
            self._protocol_error(eio_sid, f"malformed Socket.IO packet ({exc})")
            return
        if partial is not None:
            if complete:
                del self._binary_packet[eio_sid]
                self._dispatch(eio_sid, pkt)
            return
        kind = pkt.packet_type
        if kind == sio_packet.EVENT:
            if not isinstance(pkt.data, list) or not pkt.data or not isinstance(pkt.data[0], str):
                self._protocol_error(eio_sid, "an EVENT packet needs [name, ...args]")
                return
        elif kind in (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK):
            if not self.manager.sid_from_eio_sid(eio_sid, pkt.namespace or "/"):
                self._protocol_error(eio_sid, "binary packet on a namespace not connected")
                return
            self._binary_packet[eio_sid] = pkt
            return
        elif kind not in (sio_packet.CONNECT, sio_packet.DISCONNECT, sio_packet.ACK):
            self._protocol_error(eio_sid, f"unexpected packet type {kind}")
            return
        self._dispatch(eio_sid, pkt)

    def _dispatch(self, eio_sid: str, pkt: Any) -> None:
        """Handle a complete packet here, or on the pool when on the reactor."""
        if self.eio.on_reactor():
            key: tuple[Any, ...] = (eio_sid, pkt.namespace or "/")
            if pkt.packet_type in (sio_packet.ACK, sio_packet.BINARY_ACK):
                if self._ack_wakes_waiter(eio_sid, pkt):
                    # call()'s waiter only sets an event: run it here, so a handler
                    # blocked in call() is answered even when every pool thread
                    # is blocked the same way
                    self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data)
                    return
                # an application callback: on the pool, but never queued behind
                # the namespace's events (one of them may be waiting for it)
                key += ("ack",)
            kind = _event_kind(key[1], pkt.data) \
                if pkt.packet_type in (sio_packet.EVENT, sio_packet.BINARY_EVENT) else None
            self.handler_pool.submit(key,
                                     functools.partial(self._handle_packet, eio_sid, pkt,
                                                       time.perf_counter()),
                                     wait=False, kind=kind)
        else:
            self._handle_packet(eio_sid, pkt, None)

    def _ack_wakes_waiter(self, eio_sid: str, pkt: Any) -> bool:
        sid = self.manager.sid_from_eio_sid(eio_sid, pkt.namespace or "/")
        callback = self.manager.callbacks.get(sid, {}).get(pkt.id)
        return getattr(callback, "_server_call_waiter", False)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        self._in_call.active = True  # emit() below marks call()'s own waiter
        try:
            return super().call(*args, **kwargs)
        finally:
            self._in_call.active = False

    def emit(self, *args: Any, **kwargs: Any) -> Any:
        callback = kwargs.get("callback")
        if callback is not None and getattr(self._in_call, "active", False):
            self._in_call.active = False
            callback._server_call_waiter = True
        return super().emit(*args, **kwargs)

    def _handle_packet(self, eio_sid: str, pkt: Any, queued: float | None) -> None:
        kind = pkt.packet_type
        if kind in (sio_packet.EVENT, sio_packet.BINARY_EVENT):
            self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data, queued)
        elif kind in (sio_packet.ACK, sio_packet.BINARY_ACK):
            self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data)
        elif kind == sio_packet.CONNECT:
            self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        else:
            self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
            self._end_poll_if_gone(eio_sid)

    def _end_poll_if_gone(self, eio_sid: str) -> None:
        """Answer a polling client's pending long-poll once it has left every namespace.

        python-engineio's threaded client sometimes drops its Engine.IO CLOSE
        on disconnect (its writer stops as soon as the state changes, which can
        be before the CLOSE is sent), and then waits for its pending GET: up to
        a ping interval (25 s), holding one of our request threads as long.  A
        NOOP ends that poll at once; any client ignores it, and the session
        itself still ends as before (CLOSE, or the ping timeout).
        """
        if any(self.manager.sid_from_eio_sid(eio_sid, namespace) is not None
               for namespace in list(self.manager.get_namespaces())):
            return
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None and not socket.upgraded and not socket.closed:
            socket.send(eio_packet.Packet(eio_packet.NOOP))

    def _protocol_error(self, eio_sid: str, reason: str) -> None:
        self._protocol_warning.warning("closing session %s: %s", eio_sid, reason)
        if eio_sid in self._memory_clients:
            raise ValueError(reason)  # a test client sent it: tell the test
        session = self.eio.sockets.get(eio_sid)
        if session is not None:
            # a polling POST carrying it is answered 400 (EngineSocket)
            session.protocol_error = reason
        self.eio.disconnect(eio_sid)

    # -- the test seam ---------------------------------------------------------
    def attach_memory_client(self, eio_sid: str, receiver: Callable[[Any], None],
                             environ: dict) -> None:
        """Serve ``eio_sid`` in memory: its packets go to ``receiver``."""
        self._memory_clients[eio_sid] = receiver
        # an idle Engine.IO session stands for the client, so that whatever asks
        # Engine.IO about it (transport(), the Admin UI) gets an answer; it never
        # carries packets and is never pinged
        placeholder = EngineSocket(self.eio, eio_sid)
        placeholder.connected = True
        placeholder.last_ping = None
        self.eio.sockets[eio_sid] = placeholder
        self._handle_eio_connect(eio_sid, environ)

    def feed_memory_packet(self, eio_sid: str, pkt: Any) -> None:
        """Handle a packet from an in-memory client as if it came off the wire."""
        encoded = pkt.encode()
        for part in encoded if isinstance(encoded, list) else [encoded]:
            self._handle_eio_message(eio_sid, part)

    def detach_memory_client(self, eio_sid: str) -> None:
        """Forget an in-memory client after running its disconnect handlers."""
        if eio_sid in self._memory_clients:
            self._handle_eio_disconnect(eio_sid, self.reason.CLIENT_DISCONNECT)
            self._memory_clients.pop(eio_sid, None)
            self.eio.sockets.pop(eio_sid, None)

    # -- extras Flask-SocketIO hides -------------------------------------------
    def participants(self, room: str, namespace: str = "/") -> list[str]:
        """Session ids of the clients in ``room`` on this process."""
        return [sid for sid, _ in self.manager.get_participants(namespace, room)]


def _attachment_count(data: Any) -> int:
    """Binary attachments announced by an encoded Socket.IO packet (``'51-…'``)."""
    if isinstance(data, str) and data[:1] in ("5", "6"):
        dash = data.find("-")
        if dash > 1 and data[1:dash].isdigit():
            return int(data[1:dash])
    return 0


class WireDecoder:
    """Reassembles Socket.IO packets from their wire parts (text, then attachments)."""

    def __init__(self, packet_class: type = sio_packet.Packet) -> None:
        self.packet_class = packet_class
        self._partial: Any = None

    def feed(self, part: Any) -> Any:
        """Return the completed packet, or None while attachments are missing."""
        if self._partial is not None:
            if self._partial.add_attachment(part):
                done, self._partial = self._partial, None
                return done
            return None
        pkt = self.packet_class(encoded_packet=part)
        if pkt.attachment_count:
            self._partial = pkt
            return None
        return pkt
