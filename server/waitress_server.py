# design:
#   waitress's TCP server with one change: where a parsed request goes.
#   waitress's main loop (one thread: accept, read, parse, flush, close)
#   calls server.add_task(channel) when a channel's first outstanding request
#   is complete, holding channel.requests_lock; a task thread calls it too,
#   from channel.service(), for the next pipelined request.  Here add_task
#   sends the request one of three ways:
#   * on the main loop, a plain health/readiness probe (server.front:
#     Front.inline) is answered right there: the answer is sent at once (a
#     non-blocking send; what does not fit goes into the channel's output
#     buffer, which the loop flushes), and the request is removed as a
#     finished task would remove it.  A probe
#     never waits for a request thread, so it passes while every request
#     thread is busy or a connect storm is on.  (From a task thread the
#     probe takes the request pool like any request: the channel's other
#     requests are that thread's to schedule.)
#   * WebSocket handshakes for the Socket.IO path go to the handshake lane
#     (server.front.HandshakeLane, setting handshake_threads), which runs
#     channel.service() as a request thread would;  if every lane thread is
#     held (a WebSocket whose hand-off failed is served in place, for its
#     life), handshakes go to the request pool;
#   * everything else goes to waitress's request pool.
#   The main loop also accepts up to ACCEPT_BATCH connections per turn where
#   waitress accepts one.
#   Who blocks: nobody on the main loop; the output buffer's lock is taken,
#   uncontended (no task runs for a channel with no outstanding request).
#   Lock order: channel.requests_lock (held by waitress) -> channel.outbuf_lock.
#   On close: the lane is shut down after waitress's request pool.
#   Relies on waitress internals (BaseWSGIServer.add_task and run, the
#   channel's requests, outbufs, outbuf_lock, total_outbufs_len,
#   current_outbuf_count, close_when_flushed, the parser's command,
#   request_uri, version, headers, connection_close, error, content_length,
#   chunked): tests/test_waitress_server.py pins the versions it was checked
#   against and the names it uses.
"""waitress, with health answers and WebSocket handshakes kept off the request pool.

``socketio.run(app, server='waitress')`` and ``python -m server run --server
waitress`` serve with it; ``waitress-serve`` cannot (it has no way to choose
the server class) and serves everything from its request pool.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from waitress.server import TcpWSGIServer

from .front import ACCEPT_BATCH, Front, HandshakeLane, encode_answer, probe_environ

__all__ = ["FrontServer"]

log = logging.getLogger("server")


class FrontServer(TcpWSGIServer):
    """waitress's ``TcpWSGIServer``; health probes and WebSocket handshakes kept
    off the request pool (see the design note above).

    :param front: what to answer and route, ``Front.find(app)``; None serves
                  everything from the request pool, as waitress does.
    :param lane: the handshake lane; None sends handshakes to the request pool.
    The other arguments are ``TcpWSGIServer``'s.
    """

    def __init__(self, application: Any, *args: Any, front: Front | None = None,
                 lane: HandshakeLane | None = None, **kwargs: Any) -> None:
        self.front = front
        self.lane = lane
        #: the main loop's thread, once run() is called
        self._loop_ident: int | None = None
        super().__init__(application, *args, **kwargs)

    def run(self) -> None:
        self._loop_ident = threading.get_ident()
        super().run()

    def handle_accept(self) -> None:
        # waitress accepts one connection per turn of its loop: in a connect
        # storm a probe waited behind the whole accept queue, one turn (and one
        # wait for the GIL) per connection ahead of it
        for _ in range(ACCEPT_BATCH):
            open_now = len(self._map)
            if open_now >= self.adj.connection_limit:
                break
            super().handle_accept()
            if len(self._map) == open_now:  # nothing left to accept (or a failed one)
                break

    def add_task(self, channel: Any) -> None:
        front = self.front
        if front is not None and (channel.close_when_flushed or channel.will_close):
            # requests read after a probe asked to close: unanswered, as waitress
            # leaves those read behind a request that closes the connection
            for rest in channel.requests:
                rest.close()
            channel.requests.clear()
            return
        request = channel.requests[0] if channel.requests else None
        if front is None or request is None or request.error:
            super().add_task(channel)
            return
        headers = request.headers  # upper case, '_' for '-', repeats joined
        target = request.request_uri

        def header(name: str) -> str | None:
            return headers.get(name.upper().replace("-", "_"))

        if (threading.get_ident() == self._loop_ident and len(channel.requests) == 1
                and not request.chunked and not request.content_length
                and front.inline(request.command, target, header)
                and self._answer(channel, request, target)):
            return
        if self.lane is not None and front.handshake(target, header) and not self.lane.held():
            self.lane.submit(channel.service)
            return
        super().add_task(channel)

    def _answer(self, channel: Any, request: Any, target: str) -> bool:
        """Queue the probe's answer on ``channel``; False when it is not a probe path."""
        assert self.front is not None
        peer = channel.addr[0] if isinstance(channel.addr, tuple) and channel.addr else ""
        answer = self.front.answer(probe_environ(
            request.command, target, f"HTTP/{request.version}",
            [(name.lower().replace("_", "-"), value) for name, value in request.headers.items()],
            str(peer), (str(self.effective_host), str(self.effective_port))))
        if answer is None:
            return False
        tokens = request.headers.get("CONNECTION", "").lower().split(",")
        close = bool(request.connection_close) or "close" in (t.strip() for t in tokens)
        data = encode_answer(answer, close=close)
        with channel.outbuf_lock:
            if not channel.total_outbufs_len:
                # sent now rather than on the loop's next turn: the probe's
                # client has its answer one wait for the GIL sooner
                try:
                    data = data[channel.socket.send(data):]
                except OSError:  # the loop finds out for itself on its next turn
                    pass
            if data:
                channel.outbufs[-1].append(data)
                channel.current_outbuf_count += len(data)
                channel.total_outbufs_len += len(data)
        channel.requests.pop(0)  # what service() does once a request is answered
        request.close()
        if close:
            # like a task with close_on_finish: the rest of what was read goes unanswered
            channel.close_when_flushed = True
            for rest in channel.requests:
                rest.close()
            channel.requests.clear()
        return True
