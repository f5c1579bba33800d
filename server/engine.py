# design:
#   The Engine.IO server, threading mode only.  python-engineio keeps its async
#   primitives in a module-global mapping (``_async``) shared by every server in
#   the process; we never mutate it: each instance gets its own copy with the
#   hand-off WebSocket (server.websocket) and daemon threads.
#   Threads: a WSGI server thread runs handle_request(); a WebSocket, once its
#   handshake is done, is owned by the hand-off threads (see server.websocket);
#   the monitor thread (python-engineio's service task) closes silent clients.
#   Nothing here holds a lock while calling application code.
"""Engine.IO layer: python-engineio's ``Server`` with per-instance drivers."""
from __future__ import annotations

import threading
from typing import Any

import engineio

try:
    from .websocket import HandoffWebSocket, WebSocketRegistry
except ImportError:  # TEMPORARY until server.websocket lands
    from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI as HandoffWebSocket

    class WebSocketRegistry:  # type: ignore[no-redef]
        def count(self) -> int:
            return 0

        def close_all(self, **kwargs: Any) -> None:
            return None


class DaemonThread(threading.Thread):
    """Every thread we start is a daemon: none may keep a stopping worker alive."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["daemon"] = True
        super().__init__(*args, **kwargs)


class EngineServer(engineio.Server):
    """python-engineio's server, threading mode, with WebSocket hand-off."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["async_mode"] = "threading"
        super().__init__(**kwargs)
        # a private copy: the module-level mapping is shared by all servers
        self._async = {**self._async, "thread": DaemonThread,
                       "websocket": HandoffWebSocket}
        self.websockets = WebSocketRegistry()

    def connection_count(self) -> int:
        """Engine.IO sessions open in this process (all transports)."""
        return len(self.sockets)
