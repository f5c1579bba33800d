# design:
#   gunicorn's gthread worker with one change: where a fresh connection's
#   first request is served.  gthread hands every accepted connection to its
#   request pool, where a thread first waits for the request bytes.  Here the
#   worker's main thread (gunicorn's event loop: it accepts, polls kept-alive
#   connections and finishes requests) peeks at the request head of each new
#   plain-HTTP connection (recv with MSG_PEEK | MSG_DONTWAIT: the bytes stay
#   for gunicorn's parser) and sends it one of three ways:
#   * the health and readiness paths are answered right there (server.front:
#     Front.inline, from plain attributes, no app code, no lock), and the
#     connection is closed: a probe never waits for a request thread, so it
#     passes while every request thread is busy or a connect storm is on;
#   * WebSocket handshakes for the Socket.IO path go to the handshake lane
#     (server.front.HandshakeLane, setting handshake_threads), not in front
#     of HTTP requests.  (server.engine's handshake gate, on every server,
#     admits one at a time too; without the lane, handshakes waiting at that
#     gate would each hold one of gunicorn's request threads meanwhile.)  If
#     every lane thread is held (a WebSocket whose hand-off failed is served
#     in place, for its life), handshakes go to the request pool;
#   * everything else goes to gunicorn's request pool, as in gthread.
#   The accepting thread takes up to ACCEPT_BATCH connections per turn of its
#   loop (gthread: one), within worker_connections.
#   A connection with no bytes yet waits in the main loop's poller (gunicorn's
#   pending list, closed if silent as long as gthread would allow) instead of
#   in a thread.
#   Left to gunicorn unchanged: TLS (its bytes cannot be read before the TLS
#   handshake, which runs in the request thread), kept-alive connections,
#   heads that are incomplete or unusual (gunicorn's parser answers those).
#   Who blocks: nobody on the main thread; the peek, the read of the head
#   already received and the send of a < 1 KB answer into the empty send
#   buffer of a fresh connection are non-blocking calls.
#   Locks: none of ours.  Finished handshakes reach the main thread through
#   gunicorn's method_queue, like its own requests.
#   On close: the handshake lane is shut down with gunicorn's request pool.
#   Relies on gthread internals (accept, enqueue_req, finish_request,
#   method_queue, pending_conns, poller, TConn.data_ready):
#   tests/test_handoff_versions.py pins the gunicorn versions this was checked
#   against and the names it uses.
"""A gunicorn worker class: gthread, with health answers and WebSocket
handshakes kept off the request pool.

``worker_class = "server.gunicorn_worker.ThreadWorker"`` (the shipped
gunicorn.conf.py and ``run()`` use it); everything gthread does and all of its
settings are unchanged.
"""
from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import time
from dataclasses import dataclass
from functools import partial

from gunicorn.workers import gthread

from .front import ACCEPT_BATCH, Front, HandshakeLane, encode_answer, probe_environ
from .settings import server_value

__all__ = ["RequestHead", "ThreadWorker", "parse_head"]

log = logging.getLogger("server.gunicorn")

#: bytes peeked at; a longer head takes gunicorn's path
HEAD_LIMIT = 8192
#: seconds a new connection may stay silent before it is closed, plus the
#: keep-alive setting: gthread waits this long in a thread, then keepalive more
_FIRST_BYTES_TIMEOUT = gthread.DEFAULT_WORKER_DATA_TIMEOUT


@dataclass(frozen=True)
class RequestHead:
    """The request line and headers of an HTTP/1.x request."""

    method: str
    target: str
    version: str
    #: (lower-case name, value) in the order received
    headers: tuple[tuple[str, str], ...]
    #: bytes from the request line to the blank line, inclusive
    size: int

    def header(self, name: str) -> str | None:
        """The values of header ``name`` (lower case), joined by commas, or None."""
        values = [v for n, v in self.headers if n == name]
        return ", ".join(values) if values else None

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]


def parse_head(data: bytes) -> RequestHead | None:
    """The complete request head at the start of ``data``, or None.

    Strict on purpose: anything but an origin-form target, HTTP/1.0 or 1.1 and
    plain ``name: value`` lines gives None, and gunicorn's own parser (with its
    limits and error answers) reads the request instead.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    method, target, version = parts
    if version not in ("HTTP/1.0", "HTTP/1.1") or not target.startswith("/") \
            or not method.isalpha():
        return None
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or not name.isascii():
            return None  # obsolete line folding, a space before the colon...
        headers.append((name.lower(), value.strip(" \t")))
    return RequestHead(method, target, version, tuple(headers), end + 4)


class ThreadWorker(gthread.ThreadWorker):
    """gunicorn's gthread worker; health probes and WebSocket handshakes kept
    off the request pool (see the design note above)."""

    def init_process(self) -> None:
        # before gthread's init_process, which ends in run()
        self.handshake_lane = HandshakeLane(server_value("handshake_threads"))
        self._front: Front | None = None
        super().init_process()

    def run(self) -> None:
        # the app is loaded by now (in this process, or before the fork)
        front = None if self.cfg.is_ssl else Front.find(self.wsgi)
        # a SCRIPT_NAME prefix changes PATH_INFO in gunicorn's environ; ours would differ
        if front is not None and os.environ.get("SCRIPT_NAME"):
            front = Front(None, front.engineio_path)
        self._front = front
        try:
            super().run()
        finally:
            self.handshake_lane.shutdown()

    # -- new connections ---------------------------------------------------------
    def accept(self, listener: socket.socket) -> None:
        if self._front is None:
            super().accept(listener)
            return
        # several per turn of the loop: one each, in a connect storm, kept a
        # probe waiting one turn (and one wait for the GIL) per connection ahead
        for _ in range(ACCEPT_BATCH):
            if self.nr_conns >= self.worker_connections:
                return
            try:
                sock, addr = listener.accept()
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                    raise
                return
            self.nr_conns += 1
            self._dispatch(gthread.TConn(self.cfg, sock, addr, listener.getsockname()))

    def _dispatch(self, conn: gthread.TConn) -> None:
        """Answer, or hand ``conn`` to the pool its first request belongs in."""
        front = self._front
        assert front is not None
        try:
            data = conn.sock.recv(HEAD_LIMIT, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            self._wait_for_bytes(conn)
            return
        except OSError:
            data = b""
        if not data:  # the client left before sending a request
            self.nr_conns -= 1
            conn.close()
            return
        head = parse_head(data)
        # nothing after the head (len(data) == head.size): no body, no pipelining
        if head is not None and len(data) == head.size \
                and front.inline(head.method, head.target, head.header) \
                and self._answer(conn, head):
            self.nr_conns -= 1
            conn.close()
            return
        conn.data_ready = True  # gthread's handle() then skips its own wait
        if head is not None and front.handshake(head.target, head.header) \
                and not self.handshake_lane.held():
            # what enqueue_req does, for another pool: the main thread finishes it
            fs = self.handshake_lane.submit(self.handle, conn)
            fs.add_done_callback(
                lambda fut: self.method_queue.defer(self.finish_request, conn, fut))
        else:
            self.enqueue_req(conn)

    def _wait_for_bytes(self, conn: gthread.TConn) -> None:
        conn.timeout = time.monotonic() + _FIRST_BYTES_TIMEOUT + self.cfg.keepalive
        self.pending_conns.append(conn)  # murder_pending() closes it at conn.timeout
        self.poller.register(conn.sock, selectors.EVENT_READ,
                             partial(self._on_first_bytes, conn))

    def _on_first_bytes(self, conn: gthread.TConn, client: socket.socket) -> None:
        self.poller.unregister(client)
        self.pending_conns.remove(conn)
        self._dispatch(conn)

    # -- answers on this thread --------------------------------------------------
    def _answer(self, conn: gthread.TConn, head: RequestHead) -> bool:
        """Send the health/readiness answer; False when the path is not one of them."""
        assert self._front is not None
        server = conn.server if isinstance(conn.server, tuple) else ("", "")
        answer = self._front.answer(probe_environ(
            head.method, head.target, head.version, head.headers,
            conn.client[0] if isinstance(conn.client, tuple) else "",
            (str(server[0]), str(server[1]))))
        if answer is None:
            return False
        data = encode_answer(answer, close=True)
        try:
            # read the head, so that close() ends the connection with FIN, not RST
            conn.sock.recv(head.size, socket.MSG_DONTWAIT)
            sent = conn.sock.send(data, socket.MSG_DONTWAIT)
            if sent < len(data):  # never seen: a fresh connection's send buffer is empty
                log.debug("health answer cut short after %d of %d bytes", sent, len(data))
        except OSError as e:
            log.debug("client left before its %s answer: %s", head.path, e)
        return True
