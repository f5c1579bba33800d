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
#   Threads: request threads call poll()/handle_post_request(); any thread may
#   send() (the queue is thread-safe); close() may race with both, and the
#   closed/closing flags are only ever set, never cleared.
"""Engine.IO socket: python-engineio's ``Socket`` hardened for threads."""
from __future__ import annotations

from typing import Any

from engineio import exceptions, packet
from engineio.socket import Socket

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
        if self.upgraded and self.server.sockets.get(self.sid) is self:
            # a WebSocket session has nothing left to deliver: forget it now
            # rather than at the monitor's next sweep (counts stay exact).  A
            # polling session stays until its last poll has fetched the close.
            self.server.sockets.pop(self.sid, None)

    def handle_post_request(self, environ: dict) -> None:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > self.server.max_http_buffer_size:
            raise exceptions.ContentTooLongError()
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
