"""One error hierarchy.

Errors say who is at fault and what the peer gets: configuration mistakes
fail at start-up; protocol violations by a client carry the HTTP status (or
WebSocket close code) the client receives.
"""
from __future__ import annotations

from socketio.exceptions import ConnectionRefusedError as _SioConnectionRefusedError
from socketio.exceptions import TimeoutError as _SioTimeoutError


class ServerError(Exception):
    """Base class of this package's own errors."""


class ConfigurationError(ServerError, ValueError):
    """A setting is unknown or has a bad value; raised at start-up.

    The message names the setting, the value and the fix.
    """


class ProtocolError(ServerError):
    """The peer broke the Engine.IO / Socket.IO / HTTP protocol."""

    status = 400
    close_code = 1002

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if status is not None:
            self.status = status


class ServerOverloadedError(ServerError):
    """The connection cap is reached; the client gets HTTP 503."""

    status = 503


# Flask-SocketIO re-exports python-socketio's ConnectionRefusedError; its
# ``args`` reach the client's ``connect_error`` handler.  Same class, so that
# ``except socketio.exceptions.ConnectionRefusedError`` keeps working.
ConnectionRefusedError = _SioConnectionRefusedError
TimeoutError = _SioTimeoutError
