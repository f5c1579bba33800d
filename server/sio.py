# design:
#   python-socketio's threading server with two additions of ours.
#   1. Whole-packet sends.  A Socket.IO packet with binary attachments becomes
#      several Engine.IO packets; python-socketio sends them one by one, so two
#      threads emitting to the same client can interleave them and the client's
#      decoder sees a corrupt stream.  Every send to one client takes that
#      client's lock (one of a fixed set of striped locks, so there is no
#      per-client bookkeeping to leak); the lock is held only while packets are
#      queued on the Engine.IO socket, never while application code runs.
#   2. An in-memory transport for SocketIOTestClient.  A test client registers
#      a receiver under its Engine.IO sid; packets for that sid go to the
#      receiver instead of Engine.IO, and its events are handled synchronously
#      so a test sees acks at once.  Registration lives on the server instance.
"""Socket.IO layer: python-socketio's ``Server`` with thread-safe sends."""
from __future__ import annotations

import threading
import zlib
from typing import Any, Callable

import socketio
from socketio import packet as sio_packet

from .engine import EngineServer

_LOCK_STRIPES = 256


class SocketIOServer(socketio.Server):
    """python-socketio's server, threading mode, safe to emit from any thread."""

    def __init__(self, **kwargs: Any) -> None:
        self._send_locks = tuple(threading.Lock() for _ in range(_LOCK_STRIPES))
        self._memory_clients: dict[str, Callable[[Any], None]] = {}
        super().__init__(**kwargs)

    def _engineio_server_class(self) -> type:
        return EngineServer

    def _lock_for(self, eio_sid: str) -> threading.Lock:
        return self._send_locks[zlib.crc32(eio_sid.encode()) % _LOCK_STRIPES]

    def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        receiver = self._memory_clients.get(eio_sid)
        if receiver is not None:
            receiver(pkt)
            return
        encoded = pkt.encode()
        with self._lock_for(eio_sid):
            if isinstance(encoded, list):
                for part in encoded:
                    self.eio.send(eio_sid, part)
            else:
                self.eio.send(eio_sid, encoded)

    def _send_eio_packet(self, eio_sid: str, eio_pkt: Any) -> None:
        if eio_sid in self._memory_clients:
            return  # Engine.IO-level packets mean nothing to an in-memory client
        with self._lock_for(eio_sid):
            self.eio.send_packet(eio_sid, eio_pkt)

    def _handle_event(self, eio_sid: str, namespace: str, id: Any, data: Any) -> None:
        if eio_sid not in self._memory_clients:
            return super()._handle_event(eio_sid, namespace, id, data)
        # in-memory test clients are served synchronously, so that emit()
        # returns with the acknowledgement already received
        namespace = namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if not self.manager.is_connected(sid, namespace):
            return None
        self._handle_event_internal(self, sid, eio_sid, data, namespace, id)
        return None

    # -- the test seam ---------------------------------------------------------
    def attach_memory_client(self, eio_sid: str, receiver: Callable[[Any], None],
                             environ: dict) -> None:
        """Serve ``eio_sid`` in memory: its packets go to ``receiver``."""
        self._memory_clients[eio_sid] = receiver
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

    # -- extras Flask-SocketIO hides -------------------------------------------
    def participants(self, room: str, namespace: str = "/") -> list[str]:
        """Session ids of the clients in ``room`` on this process."""
        return [sid for sid, _ in self.manager.get_participants(namespace, room)]


def decode_wire(pkt: Any, packet_class: type = sio_packet.Packet) -> Any:
    """Round-trip ``pkt`` through its wire encoding (what a real client would see)."""
    encoded = pkt.encode()
    if not isinstance(encoded, list):
        return packet_class(encoded_packet=encoded)
    decoded = packet_class(encoded_packet=encoded[0])
    for attachment in encoded[1:]:
        decoded.add_attachment(attachment)
    return decoded
