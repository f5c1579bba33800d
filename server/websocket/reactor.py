# design:
#   One Reactor per Engine.IO server: a single daemon thread that waits on
#   every handed-off WebSocket at once (selectors: epoll on Linux) and runs
#   the server's timers (Engine.IO pings, close deadlines).  It replaces the
#   three threads python-engineio keeps per WebSocket (reader, writer, ping
#   sleeper): an open connection costs no thread at all.
#   Who may block: nobody on the reactor thread.  Its callbacks read what a
#   socket has (non-blocking), parse frames, decode Engine.IO packets and hand
#   application work to the handler pool; writes are non-blocking and what the
#   kernel does not take waits in the connection's buffer.
#   Thread safety: the selector and the timer heap are touched only by the
#   reactor thread.  Other threads go through call_soon() (a locked deque and
#   a wake-up byte on a socketpair); call_later() from another thread is a
#   call_soon() that pushes the timer.
#   Lock order: self._lock guards the call deque only and is never held while
#   running a callback.
#   Fork: the thread starts on first use, in the process that uses it; a
#   reactor inherited across fork() starts afresh in the child.
#   On close: stop() ends the loop; connections still registered are left to
#   their owners (the registry closes them first on a graceful stop).
"""A small event loop for idle-cheap WebSockets and shared timers."""
from __future__ import annotations

import heapq
import itertools
import logging
import os
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger("server.websocket")

Callback = Callable[[], Any]


def _cancelled() -> None:
    pass


class Timer:
    """A pending call_later(); cancel() makes it a no-op."""

    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callback) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        # let go of the callback (a session's ping, say) now, not when the
        # timer comes due: it may be seconds away in the heap
        self.cancelled = True
        self.callback = _cancelled


class Reactor:
    """Runs socket-readiness callbacks and timers on one daemon thread.

    ``name`` names the thread.  Everything is started lazily: constructing
    a Reactor opens nothing.
    """

    def __init__(self, name: str = "websocket-reactor") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._calls: deque[Callback] = deque()
        self._woken = False
        self._timers: list[tuple[float, int, Timer]] = []
        #: call_every() callbacks, armed again on every (re)start of the loop
        self._periodic: list[Callback] = []
        self._seq = itertools.count()
        self._selector: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stopping = False

    # -- any thread ----------------------------------------------------------

    def in_loop(self) -> bool:
        """True when called from the reactor thread."""
        return self._thread is threading.current_thread()

    def call_soon(self, callback: Callback) -> None:
        """Run ``callback`` on the reactor thread, soon (thread-safe)."""
        self._ensure_running()
        with self._lock:
            self._calls.append(callback)
            if self._woken:
                return
            self._woken = True
        try:
            assert self._wake_w is not None
            self._wake_w.send(b"\0")
        except OSError:  # the wake-up buffer is full: the loop is awake anyway
            pass

    def call_later(self, delay: float, callback: Callback) -> Timer:
        """Run ``callback`` on the reactor thread after ``delay`` seconds."""
        timer = Timer(time.monotonic() + delay, callback)
        if self.in_loop():
            self._push(timer)
        else:
            self.call_soon(lambda: self._push(timer))
        return timer

    def call_every(self, interval: float, callback: Callback) -> None:
        """Run ``callback`` on the reactor thread every ``interval`` seconds.

        Does not start the loop; kept across stop() and fork(): a loop that
        starts afresh arms it again, first run soon after the start.
        """
        def run() -> None:
            try:
                callback()
            finally:
                self._push(Timer(time.monotonic() + interval, run))

        with self._lock:
            self._periodic.append(run)
            running = self._thread is not None and self._pid == os.getpid()
        if running:
            self.call_soon(run)

    def stop(self, timeout: float = 5.0) -> None:
        """End the loop thread (registered sockets are not closed)."""
        thread = self._thread
        if thread is None or self._pid != os.getpid():
            return
        self._stopping = True
        self.call_soon(lambda: None)
        if thread is not threading.current_thread():
            thread.join(timeout)
        with self._lock:
            if self._thread is thread:
                self._thread = None  # a later call starts a fresh loop

    # -- reactor thread only -------------------------------------------------

    def register(self, sock: socket.socket, events: int, callback: Callable[[int], Any]) -> None:
        assert self._selector is not None
        self._selector.register(sock, events, callback)

    def modify(self, sock: socket.socket, events: int, callback: Callable[[int], Any]) -> None:
        assert self._selector is not None
        self._selector.modify(sock, events, callback)

    def unregister(self, sock: socket.socket) -> None:
        assert self._selector is not None
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError, OSError):
            pass

    # -- internals ---------------------------------------------------------------

    def _push(self, timer: Timer) -> None:
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))

    def _ensure_running(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is not None and self._pid == os.getpid():
                return
            # a fresh start, also after fork(): what the parent had is not ours
            self._selector = selectors.DefaultSelector()
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._selector.register(self._wake_r, selectors.EVENT_READ, None)
            self._calls.clear()
            self._timers = []
            self._calls.extend(self._periodic)
            self._woken = False
            self._stopping = False
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        selector = self._selector
        assert selector is not None and self._wake_r is not None
        wake_r, wake_w = self._wake_r, self._wake_w
        timers = self._timers
        me = threading.current_thread()
        # a stopped loop (or one replaced after a stop that timed out) ends
        while self._thread is me and not self._stopping:
            timeout = None
            if timers:
                timeout = max(0.0, timers[0][0] - time.monotonic())
            if self._calls:
                timeout = 0.0
            try:
                ready = selector.select(timeout)
            except OSError:  # pragma: no cover - EINTR is retried by Python
                log.exception("reactor: select failed")
                continue
            for key, mask in ready:
                if key.data is None:
                    try:
                        while wake_r.recv(4096):
                            pass
                    except OSError:
                        pass
                    continue
                self._safely(key.data, mask)
            with self._lock:
                calls, self._calls = self._calls, deque()
                self._woken = False
            for call in calls:
                self._safely(call)
            now = time.monotonic()
            while timers and timers[0][0] <= now:
                timer = heapq.heappop(timers)[2]
                if not timer.cancelled:
                    self._safely(timer.callback)
            # an idle loop waits in select() for long: what the last round ran
            # (a closed connection's callbacks) must not stay alive meanwhile
            ready = calls = call = key = timer = None  # type: ignore[assignment]
        selector.close()
        wake_r.close()
        if wake_w is not None:
            wake_w.close()

    @staticmethod
    def _safely(callback: Callable[..., Any], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("reactor: callback %r failed", callback)
