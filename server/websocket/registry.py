# design:
#   A set of live hand-off connections, one registry per Engine.IO server.
#   Connections add themselves once their 101 is sent and discard themselves
#   when their socket is released (from their own thread).  close_all runs in
#   whatever thread stops the server.  self._lock guards the set only and is
#   never held while calling into a connection (whose own locks may block on
#   a slow peer).
"""Live WebSocket connections, so that a stopping server can close them."""
from __future__ import annotations

import threading
import time
from typing import Any, Protocol


class Connection(Protocol):
    """What the registry needs from a connection (HandoffWebSocket has it)."""

    done: threading.Event

    def close(self, code: int = ..., reason: str | None = ...,
              timeout: float | None = ...) -> Any: ...

    def abort(self) -> Any: ...


class WebSocketRegistry:
    """Thread-safe set of the WebSocket connections this server has open."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[Connection] = set()
        self._noted: set[str] = set()

    def add(self, conn: Connection) -> None:
        with self._lock:
            self._live.add(conn)

    def discard(self, conn: Connection) -> None:
        with self._lock:
            self._live.discard(conn)

    def count(self) -> int:
        """How many WebSocket connections are open now."""
        with self._lock:
            return len(self._live)

    def note_once(self, key: str) -> bool:
        """True the first time ``key`` is seen: for warnings logged once."""
        with self._lock:
            if key in self._noted:
                return False
            self._noted.add(key)
            return True

    def close_all(self, code: int = 1001, reason: str = "server shutting down",
                  timeout: float = 5.0) -> int:
        """Send every client a Close frame and wait for the connections to end.

        Clients see a clean close (1001 "going away" by default) and
        reconnect elsewhere.  Connections still open after ``timeout``
        seconds are cut.  Returns how many ended cleanly.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            live = list(self._live)
        for conn in live:
            conn.close(code, reason, timeout=max(0.0, deadline - time.monotonic()))
        clean = 0
        for conn in live:
            if conn.done.wait(max(0.0, deadline - time.monotonic())):
                clean += 1
            else:
                conn.abort()
        return clean
