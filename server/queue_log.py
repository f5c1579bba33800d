"""The message queue managers' logger: one line per problem, with its cause.

python-socketio's queue managers log every failed publish twice ("retrying",
"giving up"), so while the queue is down every emit adds two error lines;
and they put the cause in ``extra`` (``redis_exception``…), which ordinary
log formats do not show.  :class:`QueueLog` is given to the manager as its
``logger``: it appends the cause to the message and lets each distinct
warning or error through at most once per ``interval``, counting the rest.
The distinct messages are the managers' fixed texts, so the table stays small.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any


class QueueLog(logging.LoggerAdapter):
    """A LoggerAdapter that rate-limits repeated warnings and errors by text."""

    def __init__(self, logger: logging.Logger, interval: float = 30.0) -> None:
        super().__init__(logger, {})
        self.interval = interval
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        key = str(msg)
        extra = kwargs.get("extra") or {}
        causes = [str(v) for k, v in extra.items() if k.endswith("exception")]
        if causes:
            msg = f"{msg} (%s)"
            args = (*args, "; ".join(causes))
        if level >= logging.WARNING:
            now = time.monotonic()
            with self._lock:
                if now < self._next.get(key, 0.0):
                    self._suppressed[key] = self._suppressed.get(key, 0) + 1
                    return
                suppressed = self._suppressed.pop(key, 0)
                self._next[key] = now + self.interval
            if suppressed:
                msg = f"{msg} [%d similar messages suppressed]"
                args = (*args, suppressed)
        super().log(level, msg, *args, **kwargs)
