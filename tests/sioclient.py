"""python-socketio's Client, handling the server's messages in arrival order.

python-engineio's Client hands every message to a new thread, so a binary
Socket.IO packet's header and its attachment can be decoded out of order
("invalid literal for int()" in the client, a lost event) and events may be
seen out of order.  These subclasses handle each message on the client's
read thread instead: the client behaves like the official JavaScript client.
Handlers must then not block waiting on the server (no ``call()`` inside an
event handler).
"""
from __future__ import annotations

from typing import Any

import engineio
import socketio


class OrderedEngineClient(engineio.Client):
    def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "message":
            kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)


class OrderedClient(socketio.Client):
    """A ``socketio.Client`` whose messages are handled in order, one at a time."""

    def _engineio_client_class(self) -> type:
        return OrderedEngineClient
