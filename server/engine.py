# design:
#   The Engine.IO server, threading mode only.  python-engineio keeps its async
#   primitives in a module-global mapping (``_async``) shared by every server in
#   the process; we never mutate it: each instance gets its own copy with the
#   hand-off WebSocket (server.websocket) and daemon threads.
#   Threads: a WSGI server thread runs handle_request(); a WebSocket, once its
#   handshake is done, is served by the reactor (websocket_io='events', see
#   server.websocket.evented) or by hand-off threads of its own ('threads');
#   the reactor also runs every session's ping timer and, once a second, the
#   GC pacer (server.gc_pacing, Reactor.call_every); the monitor thread
#   (python-engineio's service task) closes silent clients.
#   WebSocket handshakes (transport=websocket requests, up to the hand-off)
#   pass a gate of handshake_threads at a time: they are CPU work only, which
#   more threads do no faster, and every thread in a connect storm is one
#   more contender for the GIL that a health probe must wait behind.  A
#   WebSocket served in its request thread (no hand-off) leaves the gate
#   before serving (GATE_KEY).
#   Nothing here holds a lock while calling application code (the gate is
#   held over python-engineio's internal connect event only).
"""Engine.IO layer: python-engineio's ``Server`` with per-instance drivers."""
from __future__ import annotations

import functools
import threading
from typing import Any

import engineio
from engineio import packet as eio_packet

from .engine_socket import EngineSocket
from .gc_pacing import GCPacer
from .security_cookies import engineio_cookie
from .settings import server_value
from .websocket import EventedWebSocket, HandoffWebSocket, Reactor, WebSocketRegistry
from .websocket.drivers import GATE_KEY


class DaemonThread(threading.Thread):
    """Every thread we start is a daemon: none may keep a stopping worker alive."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["daemon"] = True
        super().__init__(*args, **kwargs)


class EngineServer(engineio.Server):
    """python-engineio's server, threading mode, with WebSocket hand-off."""

    def __init__(self, websocket_compression: bool = False, websocket_io: str = "events",
                 gc_freeze: bool = True, **kwargs: Any) -> None:
        kwargs["async_mode"] = "threading"
        super().__init__(**kwargs)
        # a private copy: the module-level mapping is shared by all servers
        self._async = {**self._async, "thread": DaemonThread,
                       "websocket": functools.partial(HandoffWebSocket,
                                                      compression=websocket_compression)}
        self.websocket_io = websocket_io
        self._websocket_compression = websocket_compression
        self.websockets = WebSocketRegistry()
        self._handshake_gate = threading.BoundedSemaphore(server_value("handshake_threads"))
        #: the event loop serving WebSockets and every session's ping timer
        self.reactor = Reactor(name="engineio-reactor")
        #: the handler pool (``saturated``, ``notify_when_space``): reactor-served
        #: WebSockets stop reading while it is over its bound.  Set by SocketIOServer.
        self.intake: Any = None
        #: told of packets and pings our session paths handle (server.admin_ui),
        #: once python-socketio's Admin UI is instrumented; else None
        self.observer: Any = None
        #: sessions opened since start (the GC pacer tells closed from open with it)
        self.sessions_opened = 0
        self._opened_lock = threading.Lock()
        self.gc_pacer = GCPacer(lambda: len(self.sockets), lambda: self.sessions_opened) \
            if gc_freeze else None
        if self.gc_pacer is not None:
            # ticks once the reactor runs (with the first WebSocket or ping timer)
            self.reactor.call_every(self.gc_pacer.interval, self.gc_pacer.tick)

    def handle_request(self, environ: dict, start_response: Any) -> Any:
        """python-engineio's ``handle_request``; WebSocket handshakes through the gate."""
        if "transport=websocket" not in environ.get("QUERY_STRING", ""):
            return super().handle_request(environ, start_response)
        self._handshake_gate.acquire()
        released = False

        def let_next_in() -> None:  # called from this request's thread only
            nonlocal released
            if not released:
                released = True
                self._handshake_gate.release()

        environ[GATE_KEY] = let_next_in
        try:
            return super().handle_request(environ, start_response)
        finally:
            let_next_in()

    def websocket_for(self, session: Any) -> HandoffWebSocket:
        """The WebSocket object that will serve ``session``'s upgrade request."""
        if self.websocket_io == "threads":
            return self._async["websocket"](session._websocket_handler, self)
        return EventedWebSocket(session._websocket_handler, self, session=session,
                                reactor=self.reactor, intake=self.intake,
                                compression=self._websocket_compression)

    def on_reactor(self) -> bool:
        """True on the reactor thread, where no application code may run."""
        return self.reactor.in_loop()

    def shutdown(self) -> None:
        super().shutdown()
        self.reactor.stop()

    def _handle_connect(self, environ: dict, start_response: Any, transport: str,
                        jsonp_index: int | None = None) -> Any:
        """A new Engine.IO session, served by our :class:`EngineSocket`.

        Mirrors python-engineio 4.x's own ``_handle_connect`` (pinned by
        tests/test_versions.py); the session class is the only difference.
        """
        if self.start_service_task:
            self.start_service_task = False
            self.service_task_handle = self.start_background_task(self._service_task)
        sid = self.generate_id()
        s = EngineSocket(self, sid)
        self.sockets[sid] = s
        with self._opened_lock:
            self.sessions_opened += 1
        s.send(eio_packet.Packet(eio_packet.OPEN, {
            "sid": sid,
            "upgrades": self._upgrades(sid, transport),
            "pingTimeout": int(self.ping_timeout * 1000),
            "pingInterval": int(self.ping_interval + self.ping_interval_grace_period) * 1000,
            "maxPayload": self.max_http_buffer_size,
        }))
        ret = self._trigger_event("connect", sid, environ, run_async=False)
        if ret is not None and ret is not True:
            del self.sockets[sid]
            self.logger.warning("Application rejected connection")
            return self._unauthorized(ret or None)
        s.schedule_ping()
        if transport == "websocket":
            ret = s.handle_get_request(environ, start_response)
            if s.closed and sid in self.sockets:
                del self.sockets[sid]
            return ret
        s.connected = True
        headers = None
        attributes = engineio_cookie(self.cookie, environ)  # HttpOnly, Secure on HTTPS
        if attributes:
            headers = [("Set-Cookie", self._generate_sid_cookie(sid, attributes))]
        try:
            return self._ok(s.poll(), headers=headers, jsonp_index=jsonp_index)
        except engineio.exceptions.QueueEmpty:
            return self._bad_request()
