# design:
#   One Engine.IO session.  python-engineio's Socket, with three changes:
#   - poll() hands out at most MAX_POLL_PACKETS packets per long-poll response
#     (python-engineio's client refuses a payload of more than 16 packets and
#     drops the session); the rest wait for the next poll, in order;
#   - close() never waits for the outgoing queue to drain: with polling, nobody
#     may ever drain it, and python-engineio's close(wait=True) then parks the
#     request thread forever;
#   - a polling POST body is decoded strictly (UTF-8, packet syntax, a bound on
#     packets) and a bad one raises BadPayload, which the server answers 400.
#   And two of ours:
#   - pings are timers on the server's reactor, not a sleeping thread per
#     session (python-engineio starts one for every ping cycle);
#   - a WebSocket served by the reactor (server.websocket.evented) is driven
#     by events: adopt_websocket() in the request thread, then
#     on_websocket_message()/on_websocket_closed() on the reactor thread,
#     which run python-engineio's WebSocket protocol (probe, upgrade,
#     packets) without blocking.  Once the transport is the WebSocket, send()
#     writes the packet from the calling thread instead of queueing it for a
#     writer thread.  Until then it queues, under the WebSocket's send lock,
#     and the switch drains the queue under that same lock: no packet is
#     stranded and none overtakes another.
#   The Admin UI, once instrumented, is told of packets and pings through
#   server.observer (server.admin_ui): its own class patches miss these paths,
#   and this class keeps python-engineio's _websocket_handler as imported, so
#   that those patches never apply here (a second instrument() in the process
#   made them call themselves forever).
#   Threads: request threads call poll()/handle_post_request(); any thread may
#   send() (the queue is thread-safe); close() may race with both, and the
#   closed/closing flags are only ever set, never cleared.
"""Engine.IO socket: python-engineio's ``Socket`` hardened for threads."""
from __future__ import annotations

import time
from typing import Any

from engineio import exceptions, packet
from engineio.socket import Socket

#: python-engineio's WebSocket handler as imported, before python-socketio's Admin
#: UI replaces it on the class (instrumenting twice, it then calls itself forever)
_WEBSOCKET_HANDLER = Socket._websocket_handler

#: python-engineio's client accepts at most 16 packets per polling payload
MAX_POLL_PACKETS = 16
#: packets accepted in one polling POST (socket.io-client batches bursts)
MAX_POST_PACKETS = 10_000


class BadPayload(exceptions.EngineIOError):
    """A polling POST the server cannot decode; answered with HTTP 400."""


class EngineSocket(Socket):
    """An Engine.IO session whose request threads never park."""

    #: why the Socket.IO layer closed this session for a protocol violation
    protocol_error: str | None = None
    #: the reactor-served WebSocket adopted by this session, if any
    _ws: Any = None
    #: "probe" -> "upgrade" -> "open" (or "failed") for the reactor WebSocket
    _ws_state = ""
    #: send() writes to _ws at once instead of queueing
    _direct = False
    #: the reactor timer of the next ping (cancelled at close: the session is
    #: freed then, not up to ping_interval later)
    _ping_timer: Any = None

    # -- pings: timers on the reactor -----------------------------------------

    def schedule_ping(self) -> None:
        # as python-engineio: only once the previous ping has been answered
        if self.last_ping:
            self.last_ping = None
            self._ping_timer = self.server.reactor.call_later(self.server.ping_interval,
                                                              self._ping_due)

    def _ping_due(self) -> None:
        if not self.closing and not self.closed:
            self.last_ping = time.time()
            self.send(packet.Packet(packet.PING))
            if self.server.observer is not None:
                self.server.observer.pinged(self.sid)

    # -- sending ------------------------------------------------------------------

    def send(self, pkt: Any) -> None:
        ws = self._ws
        if ws is None:
            super().send(pkt)
            return
        if not self.check_ping_timeout():
            return
        with ws.send_lock:
            if not self._direct:
                self.queue.put(pkt)
                return
            data = pkt.encode()
            try:
                ws.send_locked(data)
            except OSError:
                return  # the connection is ending; on_websocket_closed follows
        if self.server.observer is not None:
            self.server.observer.packet_out(len(data))

    def _go_direct(self) -> None:
        """Hand the queue's packets to the WebSocket, then write directly."""
        ws = self._ws
        with ws.send_lock:
            while True:
                try:
                    pkt = self.queue.get(block=False)
                except self.server.get_queue_empty_exception():
                    break
                self.queue.task_done()
                if pkt is None:  # closed meanwhile
                    self.queue.put(None)
                    break
                data = pkt.encode()
                try:
                    ws.send_locked(data)
                except OSError:
                    break
                if self.server.observer is not None:
                    self.server.observer.packet_out(len(data))
            self._direct = True

    # -- the reactor-served WebSocket -----------------------------------------

    def _upgrade_websocket(self, environ: dict, start_response: Any) -> Any:
        if self.upgraded:
            raise OSError("Socket has been upgraded already")
        ws = self.server.websocket_for(self)
        return ws(environ, start_response)

    def _websocket_handler(self, ws: Any) -> Any:
        """python-engineio's WebSocket protocol on a thread (websocket_io='threads')."""
        ws.observer = self.server.observer  # the Admin UI's figures, if instrumented
        return _WEBSOCKET_HANDLER(self, ws)

    def adopt_websocket(self, ws: Any) -> None:
        """Take a reactor-served WebSocket as this session's transport (no I/O wait)."""
        self._ws = ws
        if self.connected:  # an upgrade from polling: the probe comes first
            self.upgrading = True
            self._ws_state = "probe"
        else:
            self.connected = True
            self.upgraded = True
            self._ws_state = "open"
            self._go_direct()  # the OPEN packet, queued by the handshake

    def on_websocket_message(self, message: Any) -> None:
        """One WebSocket message (reactor thread: never blocks)."""
        if self.server.observer is not None:
            self.server.observer.packet_in(len(message))
        if len(message) > self.server.max_http_buffer_size:
            self._ws_failed("packet is too large")
            return
        try:
            pkt = packet.Packet(encoded_packet=message)
        except Exception as exc:  # python-engineio raises several kinds here
            self._ws_failed(f"malformed Engine.IO packet: {exc}")
            return
        state = self._ws_state
        if state == "open":
            try:
                self.receive(pkt)
            except exceptions.UnknownPacketError:
                pass
            except exceptions.SocketIsClosedError:
                self._ws.close()
            except Exception:
                self.server.logger.exception("Unknown receive error")
                self._ws.close()
        elif state == "probe":
            if pkt.packet_type != packet.PING or pkt.data != "probe":
                self._ws_failed("failed websocket upgrade, no PING packet")
                return
            self._ws.send(packet.Packet(packet.PONG, data="probe").encode())
            self.queue.put(packet.Packet(packet.NOOP))  # ends the pending poll
            self._ws_state = "upgrade"
        elif state == "upgrade":
            if pkt.packet_type != packet.UPGRADE:
                self._ws_failed("failed websocket upgrade, expected UPGRADE packet")
                return
            self.upgraded = True
            self.upgrading = False
            self._ws_state = "open"
            self._go_direct()
            self.server.logger.info("%s: Upgrade to websocket successful", self.sid)

    def on_websocket_closed(self) -> None:
        """The WebSocket ended (reactor thread)."""
        state, self._ws_state = self._ws_state, "closed"
        if state == "open":
            self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)
        elif state in ("probe", "upgrade"):
            self.upgrading = False  # the session goes on polling

    def _ws_failed(self, why: str) -> None:
        self.server.logger.info("%s: %s, closing the WebSocket", self.sid, why)
        if self._ws_state in ("probe", "upgrade"):
            self.upgrading = False
            self._ws_state = "failed"
        self._ws.close()

    def poll(self) -> list:
        queue_empty = self.server.get_queue_empty_exception()
        try:
            first = self.queue.get(
                timeout=self.server.ping_interval + self.server.ping_timeout)
            self.queue.task_done()
        except queue_empty:
            raise exceptions.QueueEmpty() from None
        if first is None:
            self.queue.put(None)  # keep the close marker for the next reader
            return []
        packets = [first]
        while len(packets) < MAX_POLL_PACKETS:
            try:
                pkt = self.queue.get(block=False)
            except queue_empty:
                break
            self.queue.task_done()
            if pkt is None:
                self.queue.put(None)
                break
            packets.append(pkt)
        return packets

    def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        # never join the queue: see the design note
        super().close(wait=False, abort=abort, reason=reason)
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        if self._ws is not None and self._ws_state == "open":
            self._ws.close()  # python-engineio's writer thread would do this
        if self.upgraded and self.server.sockets.get(self.sid) is self:
            # a WebSocket session has nothing left to deliver: forget it now
            # rather than at the monitor's next sweep (counts stay exact).  A
            # polling session stays until its last poll has fetched the close.
            self.server.sockets.pop(self.sid, None)

    def handle_post_request(self, environ: dict) -> None:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > self.server.max_http_buffer_size:
            raise exceptions.ContentTooLongError()
        if self.server.observer is not None:
            self.server.observer.packet_in(length)  # as the Admin UI's own wrapper
        body = environ["wsgi.input"].read(length)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadPayload("polling payload is not valid UTF-8") from None
        if not text:
            return
        parts = text.split("\x1e")
        if len(parts) > MAX_POST_PACKETS:
            raise BadPayload(f"more than {MAX_POST_PACKETS} packets in one payload")
        try:
            packets = [packet.Packet(encoded_packet=part) for part in parts]
        except Exception as exc:  # python-engineio raises several kinds here
            raise BadPayload(f"malformed Engine.IO packet: {exc}") from None
        for pkt in packets:
            self.receive(pkt)
            if self.protocol_error:
                raise BadPayload(self.protocol_error)
