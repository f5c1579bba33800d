"""The chat on the default namespace: rooms with presence, acknowledged
messages, private messages, and a round-trip ping for the page's meter."""
from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from flask import request, session

from server import emit, join_room, leave_room, rooms

from .validate import (
    BadInput,
    error_reply,
    field,
    message_text,
    name_from_auth,
    room_name,
)

#: rooms one connection may be in at once (each costs server memory)
MAX_ROOMS = 8

if TYPE_CHECKING:  # pragma: no cover
    from server import SocketIO

    from .clock import Clock
    from .presence import Presence


def register(socketio: SocketIO, presence: Presence, clock: Clock) -> None:
    message_ids = itertools.count(1)  # next() on a count is atomic under the GIL

    def announce(room: str) -> None:
        emit("presence", {"room": room, "members": presence.members(room)}, to=room)

    @socketio.on("connect")
    def connect(auth: Any) -> None:
        name = name_from_auth(auth)  # raises ConnectionRefusedError
        session["name"] = name  # this connection's session: the other handlers read it
        presence.online(request.sid, name)
        clock.ensure_started()
        emit("welcome", {"sid": request.sid, "name": name})

    @socketio.on("join")
    def join(room: Any) -> dict[str, Any]:
        room = room_name(room)
        joined = [r for r in rooms() if r != request.sid]  # every client is in its own room
        if room not in joined and len(joined) >= MAX_ROOMS:
            raise BadInput(f"you are in {MAX_ROOMS} rooms already: leave one first")
        join_room(room)
        presence.join(room, request.sid)
        announce(room)
        return {"room": room}

    @socketio.on("leave")
    def leave(room: Any) -> dict[str, Any]:
        room = room_name(room)
        leave_room(room)
        presence.leave(room, request.sid)
        announce(room)
        return {"room": room}

    @socketio.on("say")
    def say(data: Any) -> dict[str, Any]:
        room = room_name(field(data, "room"))
        text = message_text(field(data, "text"))
        if room not in rooms():
            raise BadInput(f"join room {room!r} before writing to it")
        message_id = next(message_ids)
        emit("said", {"id": message_id, "room": room, "from": session["name"], "text": text},
             to=room)
        return {"id": message_id}

    @socketio.on("private")
    def private(data: Any) -> dict[str, Any]:
        to = field(data, "to")
        text = message_text(field(data, "text"))
        target = presence.name_of(to) if isinstance(to, str) else None
        if target is None:
            raise BadInput("that user is not connected")
        emit("private", {"from": session["name"], "from_sid": request.sid, "text": text},
             to=to)
        return {"to": target}

    @socketio.on("ping_server")
    def ping_server(sent_at: Any) -> Any:
        return sent_at  # the page measures the round trip

    @socketio.on("disconnect")
    def disconnect(reason: Any = None) -> None:
        for room in presence.offline(request.sid):
            announce(room)

    socketio.on_error("/")(error_reply)
