"""Who is online and who is in which room, for the demo chat.

# design: handlers of different clients run at the same time on the handler
# pool, so every read and write of the two maps happens under one lock,
# held only for dictionary work (never while emitting).  Entries are removed
# by the disconnect handler; nothing else owns a resource here.
"""
from __future__ import annotations

import threading


class Presence:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}  # sid -> name, everyone connected on '/'
        self._rooms: dict[str, set[str]] = {}  # room -> sids

    def online(self, sid: str, name: str) -> None:
        with self._lock:
            self._names[sid] = name

    def name_of(self, sid: str) -> str | None:
        with self._lock:
            return self._names.get(sid)

    def join(self, room: str, sid: str) -> None:
        with self._lock:
            self._rooms.setdefault(room, set()).add(sid)

    def leave(self, room: str, sid: str) -> None:
        with self._lock:
            members = self._rooms.get(room)
            if members is not None:
                members.discard(sid)
                if not members:
                    del self._rooms[room]

    def members(self, room: str) -> list[dict[str, str]]:
        """The room's members as ``{"sid", "name"}``, sorted by name."""
        with self._lock:
            who = [{"sid": sid, "name": self._names.get(sid, "?")}
                   for sid in self._rooms.get(room, ())]
        return sorted(who, key=lambda m: (m["name"].lower(), m["sid"]))

    def offline(self, sid: str) -> list[str]:
        """Forget ``sid``; return the rooms it was in."""
        with self._lock:
            self._names.pop(sid, None)
            left = [room for room, sids in self._rooms.items() if sid in sids]
            for room in left:
                self._rooms[room].discard(sid)
                if not self._rooms[room]:
                    del self._rooms[room]
        return left
