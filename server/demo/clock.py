"""A background task that broadcasts the server's time to every client.

# design: one daemon thread per process, started by the first connection
# rather than by create_app(): under uWSGI (and gunicorn --preload) the app
# is built in the master and then forked, and a thread started before the
# fork would not exist in the worker.  ``ensure_started`` is called from
# handler threads, so a lock guards the start; the thread only emits (the
# server's emit is thread-safe) and exits when ``stop()`` sets the event.
"""
from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from server import SocketIO


class Clock:
    def __init__(self, socketio: SocketIO, interval: float = 1.0) -> None:
        self.socketio = socketio
        self.interval = interval
        self._lock = threading.Lock()
        self._started = False
        self._stopping = threading.Event()

    def ensure_started(self) -> None:
        with self._lock:
            if not self._started:
                self._started = True
                self.socketio.start_background_task(self._run)

    def stop(self) -> None:
        self._stopping.set()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.socketio.emit("clock", {"time": time.strftime("%H:%M:%S"),
                                         "pid": os.getpid()})
