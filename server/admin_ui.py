# design:
#   python-socketio's Admin UI (socketio.admin.InstrumentedServer) counts
#   traffic by replacing methods of engineio.socket.Socket on the class:
#   handle_post_request, _websocket_handler (wrapping its ws.send/ws.wait) and
#   _send_ping.  Our EngineSocket overrides handle_post_request and runs pings
#   as reactor timers, and a reactor-served WebSocket never runs
#   _websocket_handler: those replacements never see that traffic, so the
#   Admin UI showed no packets in or out for it.  AdminTraffic is told of the
#   same events by EngineSocket (a packet in, a packet out, a ping due) and,
#   for a WebSocket on a thread of its own (websocket_io='threads'), by
#   HandoffWebSocket's send()/wait(); it records them the way the Admin UI's
#   own wrappers do.  EngineSocket keeps python-engineio's _websocket_handler
#   as imported, so the class patches never apply to our sessions (nor
#   recurse when a second server in the process is instrumented).
#   Threads: packet_in/packet_out run on the reactor (WebSocket traffic) and
#   in request threads (polling POSTs) or any sending thread; they push into
#   the Admin UI's event buffer (two dict operations, no I/O, as upstream's
#   wrappers).  pinged() runs on the reactor and must not emit there: the
#   development-mode "socket_connected" refresh goes to the handler pool.
"""The Socket.IO Admin UI's traffic figures for the paths its patches miss."""
from __future__ import annotations

from datetime import datetime, timezone
from functools import partial
from typing import Any

__all__ = ["AdminTraffic"]


class AdminTraffic:
    """Feeds an instrumented server's event buffer from EngineSocket."""

    def __init__(self, admin: Any) -> None:
        self.admin = admin  # socketio.admin.InstrumentedServer

    def packet_in(self, size: int) -> None:
        buffer = self.admin.event_buffer
        buffer.push("packetsIn")
        buffer.push("bytesIn", size)

    def packet_out(self, size: int) -> None:
        buffer = self.admin.event_buffer
        buffer.push("packetsOut")
        buffer.push("bytesOut", size)

    def pinged(self, eio_sid: str) -> None:
        """A ping went out: in development mode the Admin UI re-announces the socket."""
        if self.admin.mode == "development":
            sio = self.admin.sio
            sio.handler_pool.submit((eio_sid, "admin-ui"), partial(self._announce, eio_sid),
                                    wait=False)

    def _announce(self, eio_sid: str) -> None:
        sio = self.admin.sio
        now = datetime.now(timezone.utc).isoformat()
        for namespace in sio.manager.get_namespaces():
            sid = sio.manager.sid_from_eio_sid(eio_sid, namespace)
            if sid:
                sio.emit("socket_connected",
                         (self.admin.serialize_socket(sid, namespace, eio_sid), now),
                         namespace=self.admin.admin_namespace)
