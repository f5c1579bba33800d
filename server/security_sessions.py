# design:
#   Runs on the threads python-engineio fires its events on: "connect" in the
#   handshake request's thread (run_async=False), "disconnect" in whichever
#   thread closes the session.  The policy's tally takes its own short lock;
#   nothing else is shared.  The wrapped handlers are python-socketio's.
"""Reporting Engine.IO sessions to the security policy, through public events.

The policy's connection caps count open sessions.  :func:`report_sessions`
wraps the Engine.IO server's ``connect`` and ``disconnect`` handlers (the
ones python-socketio registered with ``eio.on``) so that each accepted
session is reported with ``policy.session_opened(sid, environ)`` and each
ending one with ``policy.session_closed(sid)``.  An Engine.IO server that
calls those two methods itself does not need this.
"""
from __future__ import annotations

from typing import Any, Protocol


class SessionSink(Protocol):
    def session_opened(self, sid: str, environ: Any) -> None: ...
    def session_closed(self, sid: str) -> None: ...


def report_sessions(eio: Any, policy: SessionSink) -> None:
    """Call once per Engine.IO server, after python-socketio registered its
    handlers (that is, after ``SocketIO.init_app``)."""
    on_connect = eio.handlers.get("connect")
    on_disconnect = eio.handlers.get("disconnect")

    def connect(sid: str, environ: dict) -> Any:
        accepted = on_connect(sid, environ) if on_connect else None
        # python-engineio refuses the session for any other return value
        if accepted is None or accepted is True:
            policy.session_opened(sid, environ)
        return accepted

    def disconnect(sid: str, reason: Any = None) -> Any:
        policy.session_closed(sid)
        if on_disconnect is None:
            return None
        return on_disconnect(sid, reason)

    eio.on("connect", connect)
    eio.on("disconnect", disconnect)
