"""Checking what clients send to the demo (names, rooms, text), and the
reply an event gets when its handler fails."""
from __future__ import annotations

import logging
from typing import Any

from server import ConnectionRefusedError

from .primes import MAX_LIMIT

log = logging.getLogger("server.demo")


class BadInput(Exception):
    """What a client sent is wrong; the message goes back in the ack."""

MAX_NAME = 32
MAX_ROOM = 32
MAX_TEXT = 500


def name_from_auth(auth: Any) -> str:
    """The name in the connect ``auth`` payload, or refuse the connection."""
    name = auth.get("name") if isinstance(auth, dict) else None
    name = name.strip() if isinstance(name, str) else ""
    if not 1 <= len(name) <= MAX_NAME:
        raise ConnectionRefusedError(f"a name of 1 to {MAX_NAME} characters is required")
    return name


def room_name(value: Any) -> str:
    room = value.strip() if isinstance(value, str) else ""
    if not 1 <= len(room) <= MAX_ROOM:
        raise BadInput(f"a room name has 1 to {MAX_ROOM} characters")
    return room


def message_text(value: Any) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not 1 <= len(text) <= MAX_TEXT:
        raise BadInput(f"a message has 1 to {MAX_TEXT} characters")
    return text


def job_limit(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= MAX_LIMIT:
        raise BadInput(f"limit must be a whole number from 2 to {MAX_LIMIT:,}, not {value!r}")
    return value


def field(data: Any, key: str) -> Any:
    if not isinstance(data, dict):
        raise BadInput(f"expected an object with {key!r}")
    return data.get(key)


def error_reply(exc: BaseException) -> dict[str, str]:
    """What an event's ack receives when its handler raised: the message of
    a :class:`BadInput`, else a generic error (the details of our own faults
    go to the log, not to the client)."""
    if isinstance(exc, BadInput):
        return {"error": str(exc)}
    log.error("demo handler failed", exc_info=exc)
    return {"error": "internal error (logged on the server)"}
