# design:
#   python-socketio's managers keep rooms[namespace][room] = {sid: eio_sid}
#   and find a client's rooms by testing every room of the namespace.  Every
#   client has a room of its own, so with N clients a disconnect (and
#   rooms()) costs N membership tests: 5,000 clients leaving at once made
#   25 million, seconds of CPU holding the GIL while health probes waited.
#   RoomIndex keeps the reverse map, rooms_of[namespace][sid] = {room: None}
#   (a dict: rooms() lists them in the order the client entered them, where
#   upstream's scan lists them in the order the namespace first saw them;
#   neither order is documented), updated in the same basic_* methods that change
#   ``rooms``: every other change (enter/leave/close_room, the pub/sub
#   managers' remote calls) goes through them.
#   Threads: no lock, as upstream has none; a client's events (and so its
#   enters, leaves and disconnect) run one at a time (server/dispatch.py).
"""Client managers that find a client's rooms without scanning every room."""
from __future__ import annotations

import functools
from typing import Any

import socketio

__all__ = ["IndexedManager", "RoomIndex", "indexed"]


class RoomIndex:
    """Mixin for a python-socketio client manager: a per-client room index."""

    rooms: dict[Any, dict[Any, Any]]
    callbacks: dict[Any, Any]
    pending_connect: dict[Any, list[Any]]
    pending_disconnect: dict[Any, list[Any]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rooms_of: dict[Any, dict[Any, dict[Any, None]]] = {}

    def basic_enter_room(self, sid: Any, namespace: Any, room: Any,
                         eio_sid: Any = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)  # type: ignore[misc]
        self.rooms_of.setdefault(namespace, {}).setdefault(sid, {})[room] = None

    def basic_leave_room(self, sid: Any, namespace: Any, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)  # type: ignore[misc]
        clients = self.rooms_of.get(namespace)
        if clients is None:
            return
        mine = clients.get(sid)
        if mine is None:
            return
        mine.pop(room, None)
        if not mine:
            del clients[sid]
            if not clients:
                del self.rooms_of[namespace]

    def basic_disconnect(self, sid: Any, namespace: Any, **kwargs: Any) -> None:
        # upstream's basic_disconnect, with the room scan replaced by the index
        if namespace not in self.rooms:
            return
        for room in list(self.rooms_of.get(namespace, {}).get(sid, ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting is not None and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]

    def get_rooms(self, sid: Any, namespace: Any) -> list[Any]:
        """Return the rooms a client is in."""
        return [room for room in self.rooms_of.get(namespace, {}).get(sid, ())
                if room is not None]


@functools.cache  # one class per manager class, not one per server built
def indexed(manager_class: type) -> type:
    """``manager_class`` (a python-socketio manager) with the room index mixed in."""
    if issubclass(manager_class, RoomIndex):
        return manager_class
    return type(f"Indexed{manager_class.__name__}", (RoomIndex, manager_class), {})


#: python-socketio's in-process Manager with the room index (the same class
#: indexed(socketio.Manager) returns)
IndexedManager = indexed(socketio.Manager)
