"""Calling application handlers the way Flask-SocketIO does.

python-socketio hands every handler ``(sid, *args)``, with the event name and/or
namespace prepended for catch-all registrations.  This module turns that into
the Flask-SocketIO calling convention: the sid moves to ``request.sid``, the
catch-all prefixes stay as leading arguments, ``connect`` handlers get ``auth``
only if they accept it and ``disconnect`` handlers the reason only if they
accept it.  Signatures are inspected once, when the handler is registered,
never by catching ``TypeError`` at call time (that would run a handler twice
when it raises ``TypeError`` itself).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def max_positional(func: Callable[..., Any]) -> int | None:
    """How many positional arguments ``func`` takes (None: unlimited)."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # builtins without a signature
        return None
    count = 0
    for param in sig.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            return None
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


@dataclass(frozen=True)
class Call:
    """What a Socket.IO delivery means for a Flask-SocketIO handler."""

    event: str          # the real event name
    namespace: str      # the real namespace
    sid: str
    args: tuple         # the arguments the handler receives


def unpack(message: str, namespace: str, raw: tuple) -> Call:
    """Decode python-socketio's ``(…, sid, *data)`` for a registration.

    ``message``/``namespace`` are what the handler was registered for; either
    may be ``'*'``.  python-socketio prepends the event name for a catch-all
    event and the namespace for a catch-all namespace (event first).
    """
    raw = list(raw)
    event = raw.pop(0) if message == "*" else message
    real_ns = raw.pop(0) if namespace == "*" else namespace
    sid = raw.pop(0)
    prefix: list[Any] = []
    if message == "*":
        prefix.append(event)
    if namespace == "*":
        prefix.append(real_ns)
    return Call(event, real_ns, sid, (*prefix, *raw))


def fit_arguments(handler: Callable[..., Any], event: str, args: tuple,
                  prefix_len: int, limit: int | None) -> tuple:
    """Trim the optional trailing argument of ``connect``/``disconnect``.

    ``connect`` receives ``(*prefix, environ, auth)`` from python-socketio: the
    handler gets ``auth`` if it accepts one more argument than the prefix.
    ``disconnect`` receives ``(*prefix, reason)``: the reason is passed only to
    handlers that accept it.
    """
    if event == "connect":
        prefix = args[:prefix_len]
        auth = args[prefix_len + 1] if len(args) > prefix_len + 1 else None
        if limit is None or limit > prefix_len:
            return (*prefix, auth)
        return tuple(prefix)
    if event == "disconnect":
        if limit is not None and len(args) > limit:
            return tuple(args[:limit])
    return tuple(args)
