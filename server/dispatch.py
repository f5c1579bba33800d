# design:
#   The handler pool: a fixed set of daemon worker threads runs application
#   event handlers, instead of python-socketio's one new thread per event.
#   - Per-connection order: each connection has its own FIFO of pending
#     events and at most one worker runs its events at a time, so the events of
#     one client are handled in the order they arrived (unless ``ordered`` is
#     off, when any idle worker takes any event).
#   - Fairness: a worker runs one event of a connection, then puts the
#     connection at the back of the ready queue if it has more; a chatty client
#     cannot starve the others.
#   - Bounded: at most ``max_pending`` events wait in total.  When full,
#     submit() blocks the submitting transport thread for up to
#     ``full_timeout`` seconds (backpressure on that one connection: its TCP
#     window fills, its peers are unaffected), then gives up and returns False;
#     the caller tells the client.
#     The reactor (server.websocket.reactor) must never block: it submits
#     with wait=False, which queues past the bound; the reactor then stops
#     reading that connection (``saturated``) until ``notify_when_space``
#     calls back.  The overshoot is at most one read per connection.
#   - Transport threads only submit; they never run handlers, so a busy pool
#     never delays a ping/pong or the sending of packets.
#   - Wake-ups: at most one sleeping worker is being woken at a time; it wakes
#     the next if work is left.  Waking one per event made every idle thread
#     runnable in a burst, all taking turns at the GIL (echo at 100 clients
#     went from ~0.9x to ~1.9x eventlet's with this).
#   - Crowding: with the GIL, one thread runs Python at a time, so more
#     runnable workers do not finish a burst sooner; they lengthen every
#     thread's wait for the GIL, the server's own included (the reactor, the
#     thread answering /healthz: each waiter adds about one switch interval).
#     So no worker takes waiting work while ``crowd`` others run events they
#     started less than ``fresh`` seconds ago and the process has kept
#     ``cpu_share`` of a CPU busy since the oldest of those started: those
#     workers are running or queued at the GIL and take the work when done.
#     Workers blocked on I/O leave the CPU idle, so they never crowd; long
#     events (CPU work, slow I/O) stop counting after ``fresh``, so a light
#     event never waits behind them for longer.  A worker back from an event
#     asks too, so one that slipped in at a gap is balanced by one stepping
#     aside.  While work waits this way, one idle worker (the standby)
#     re-checks every 5 ms (``fresh / 4`` if shorter).
#   - CPU-heavy kinds: with the GIL, CPU-bound handlers running side by side
#     finish no sooner than one after the other, and each of them makes every
#     other thread (the reactor, light handlers) wait longer for the GIL.  So
#     an event whose kind (namespace, event name) used at least ``cpu_heavy``
#     seconds of thread CPU time on its recent runs starts only while fewer
#     than ``cpu_handlers`` such events are running and using the CPU; the
#     others wait in the held line (their connection keeps its order), while
#     events of other kinds go by.  A running heavy event that has mostly
#     stopped using the CPU (blocked on I/O, a lock, a client's answer: its
#     thread's CPU clock says so) does not count, and a held event starts
#     anyway after ``patience`` seconds, so heavy handlers that wait for each
#     other cannot deadlock.  Kinds are learnt from their runs' thread CPU
#     time, read only for kinds that took at least half the threshold by the
#     wall clock once (other events cost two cheap wall-clock reads); only
#     kinds near the threshold are remembered, and the table is bounded.
#   Lock order: the pool has one lock (``_lock``), held only to move tasks
#   between queues, never while a handler runs.
#   On close: stop() wakes the workers, which finish the event in hand and exit.
"""A bounded pool of handler threads with per-connection ordering."""
from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger("server.dispatch")

Task = Callable[[], Any]

#: kinds of heavy events remembered at most (the table is emptied when full)
MAX_KINDS = 1024
#: the cost of a kind whose next run is to be measured (see _suspect)
CANDIDATE = -1.0
#: seconds between re-checks of held heavy events by the standby worker
HELD_RECHECK = 0.05
#: a running heavy event using less than this share of a CPU since it started
#: (after MIN_ACTIVE_CHECK seconds) is taken to be waiting, not computing
ACTIVE_SHARE = 0.25
MIN_ACTIVE_CHECK = 0.005
_thread_clock = getattr(time, "pthread_getcpuclockid", None)  # POSIX only


class _HeavyRun:
    """A running heavy event: when it started, by the wall clock and its thread's CPU clock."""

    __slots__ = ("clock", "cpu", "wall")

    def __init__(self, clock: int | None, cpu: float, wall: float) -> None:
        self.clock, self.cpu, self.wall = clock, cpu, wall

    def computing(self, now: float) -> bool:
        elapsed = now - self.wall
        if self.clock is None or elapsed < MIN_ACTIVE_CHECK:
            return True
        return time.clock_gettime(self.clock) - self.cpu >= elapsed * ACTIVE_SHARE


class HandlerPool:
    """Runs event handlers on ``size`` threads, in order per connection."""

    def __init__(self, size: int = 32, max_pending: int = 10_000,
                 full_timeout: float = 5.0, ordered: bool = True,
                 name: str = "handler", crowd: int = 8, fresh: float = 0.02,
                 cpu_share: float = 0.5, cpu_handlers: int | None = None,
                 cpu_heavy: float = 0.02, patience: float = 1.0) -> None:
        if size < 1 or max_pending < 1 or crowd < 1 or fresh <= 0 or cpu_share <= 0 \
                or (cpu_handlers is not None and cpu_handlers < 1) or cpu_heavy <= 0 \
                or patience <= 0:
            raise ValueError("pool size, max_pending, crowd, fresh, cpu_share, "
                             "cpu_handlers, cpu_heavy and patience must be positive")
        self.size = size
        self.max_pending = max_pending
        self.full_timeout = full_timeout
        self.ordered = ordered
        self.name = name
        self._lock = threading.Lock()
        self._ready_cv = threading.Condition(self._lock)   # workers wait here
        self._space_cv = threading.Condition(self._lock)   # submitters wait here
        self._queues: dict[Any, collections.deque[Task]] = {}
        self._ready: collections.deque[Any] = collections.deque()
        self._pending = 0
        self._busy = 0
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._started = False
        self._space_waiters: list[Callable[[], Any]] = []
        self.crowd = crowd
        self.fresh = fresh
        self.cpu_share = cpu_share
        self._recheck = min(fresh / 4, 0.005)
        self._idle = 0     # workers waiting for work
        self._waking = 0   # of those, notified and not yet running
        self._standby = False  # an idle worker re-checks deferred work
        # worker number -> (monotonic, process CPU seconds or None) at its event's start
        self._marks: dict[int, tuple[float, float | None]] = {}
        self._verdict = False
        self._verdict_until = 0.0
        self.cpu_handlers = cpu_handlers
        self.cpu_heavy = cpu_heavy
        self.patience = patience
        #: kind -> recent CPU seconds per run, for kinds near or over cpu_heavy
        self._cost: dict[Hashable, float] = {}
        #: worker number -> its running heavy event
        self._heavy: dict[int, _HeavyRun] = {}
        #: (connection, since) whose next event is heavy and waits for a slot
        self._held: collections.deque[tuple[Any, float]] = collections.deque()

    # -- figures for /metrics and /readyz ---------------------------------------
    @property
    def pending(self) -> int:
        return self._pending

    @property
    def busy(self) -> int:
        return self._busy

    @property
    def held(self) -> int:
        """Connections whose next event is CPU-heavy and waits for a slot."""
        return len(self._held)

    def _start(self) -> None:
        # threads start on first use: constructing the server does no work
        self._started = True
        for n in range(self.size):
            thread = threading.Thread(target=self._work, args=(n,), name=f"{self.name}-{n}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def saturated(self) -> bool:
        """True while at least ``max_pending`` events wait or run."""
        return self._pending >= self.max_pending

    def notify_when_space(self, callback: Callable[[], Any]) -> None:
        """Call ``callback`` once (from a worker) when the pool is below its bound."""
        with self._lock:
            if self._pending < self.max_pending:
                ready = True
            else:
                ready = False
                self._space_waiters.append(callback)
        if ready:
            callback()

    def submit(self, key: Any, task: Task, wait: bool = True,
               kind: Hashable | None = None) -> bool:
        """Queue ``task`` for connection ``key``; False if the pool stayed full.

        With ``wait=False`` the task is queued even past the bound (the caller
        applies backpressure itself, see ``saturated``) and True is returned.
        ``kind`` (such as the namespace and event name) is what CPU cost is
        learnt by; None: never held as CPU-heavy.
        """
        with self._lock:
            if not self._started:
                self._start()
            if self._pending >= self.max_pending and wait:
                self._space_cv.wait_for(
                    lambda: self._pending < self.max_pending or self._stopping,
                    timeout=self.full_timeout)
                if self._pending >= self.max_pending or self._stopping:
                    return False
            self._pending += 1
            if not self.ordered:
                key = object()  # every task its own queue: no ordering
            queue = self._queues.get(key)
            if queue is None:
                # not scheduled: no worker holds this connection right now
                self._queues[key] = collections.deque([(task, kind)])
                self._ready.append(key)
                self._wake_one()
            else:
                queue.append((task, kind))
        return True

    def _wake_one(self) -> None:
        # (under self._lock) at most one sleeping worker is on its way at a
        # time, and it wakes the next if work is left: a burst of events does
        # not make every idle thread runnable at once to fight for the GIL,
        # while blocked handlers still get fresh threads, one wake-up apart.
        # When crowded, only a standby is woken (if none is on watch).
        if self._idle > self._waking and not self._waking:
            if self._standby and self._crowded():
                return
            self._waking += 1
            self._ready_cv.notify()

    def _crowded(self) -> bool:
        # (under self._lock) see "Crowding" in the design note.  The verdict
        # is kept for a millisecond: a burst asks once per event, and the
        # answer cannot change faster than the GIL changes hands.
        if self._busy < self.crowd:
            return False
        now = time.monotonic()
        if now >= self._verdict_until:
            self._verdict = self._judge(now)
            self._verdict_until = now + 0.001
        return self._verdict

    def _judge(self, now: float) -> bool:
        horizon = now - self.fresh
        fresh = 0
        since = None  # (start, CPU seconds) of the oldest fresh event with a CPU reading
        for mark in self._marks.values():
            if mark[0] > horizon:
                fresh += 1
                if mark[1] is not None and (since is None or mark[0] < since[0]):
                    since = mark
        if fresh < self.crowd:
            return False
        if since is None or now - since[0] < 0.001:
            return True  # too soon to tell a busy CPU from workers blocked on I/O
        return time.process_time() - since[1] >= (now - since[0]) * self.cpu_share

    # -- CPU-heavy kinds (see the design note) ----------------------------------
    def _is_heavy(self, kind: Hashable | None) -> bool:
        return kind is not None and self._cost.get(kind, 0.0) >= self.cpu_heavy

    def _heavy_full(self, now: float) -> bool:
        # (under self._lock)
        if self.cpu_handlers is None or len(self._heavy) < self.cpu_handlers:
            return False
        computing = sum(1 for run in self._heavy.values() if run.computing(now))
        return computing >= self.cpu_handlers

    def _learn(self, kind: Hashable, cost: float) -> None:
        # (under self._lock) a measured run: an even mix of its CPU time and
        # what came before, so a kind turns light again after a couple of
        # light runs; a first measurement (a candidate's) is taken as it is
        old = self._cost.get(kind, CANDIDATE)
        new = cost if old == CANDIDATE else (old + cost) / 2
        if new < self.cpu_heavy / 4 or (old == CANDIDATE and new < self.cpu_heavy / 2):
            self._cost.pop(kind, None)
        else:
            self._cost[kind] = new

    def _suspect(self, kind: Hashable) -> None:
        # (under self._lock) an unmeasured run took long by the wall clock:
        # its next run is measured by the CPU clock
        if kind not in self._cost:
            if len(self._cost) >= MAX_KINDS:
                self._cost.clear()
            self._cost[kind] = CANDIDATE

    def _pick(self) -> Any:
        # (under self._lock) the next connection from the ready line, or a
        # held one that has waited ``patience`` or now has a slot; None if
        # every ready connection's next event had to be held
        if self._held:
            now = time.monotonic()
            if self._held[0][1] <= now - self.patience or not self._heavy_full(now):
                return self._held.popleft()[0]
        while self._ready:
            key = self._ready.popleft()
            if self.cpu_handlers is not None and self._is_heavy(self._queues[key][0][1]) \
                    and self._heavy_full(time.monotonic()):
                self._held.append((key, time.monotonic()))
                continue
            return key
        return None

    def _next(self) -> Any:
        # (under self._lock) the connection to serve next, None to exit.  A
        # worker coming back from an event asks too: if others slipped in
        # meanwhile, it is the one that steps aside.
        while True:
            if self._stopping and not self._ready:
                return None
            if (self._ready or self._held) and not self._crowded():
                key = self._pick()
                if key is not None:
                    return key
            watch = bool(self._ready or self._held) and not self._standby
            if watch:
                self._standby = True
            self._idle += 1
            self._ready_cv.wait(
                (self._recheck if self._ready else HELD_RECHECK) if watch else None)
            self._idle -= 1
            if watch:
                self._standby = False
            # a timed wait can take a notification and still return False (the
            # notify raced with its timeout): counting only True returns leaked
            # _waking, and then nobody was ever woken again.  Any return settles
            # one; at worst two wake-ups are on their way at once
            if self._waking:
                self._waking -= 1

    def _work(self, number: int) -> None:
        clock = None
        if _thread_clock is not None:
            try:
                clock = _thread_clock(threading.get_ident())
            except OSError:  # no per-thread CPU clock here: heavy events always count
                clock = None
        while True:
            with self._lock:
                key = self._next()
                if key is None:
                    return
                task, kind = self._queues[key].popleft()
                self._busy += 1
                # the CPU clock (a system call) is read only by an event
                # that makes a crowd: only those are asked about later
                self._marks[number] = (time.monotonic(), time.process_time()
                                       if self._busy >= self.crowd else None)
                # a kind's cost is learnt from its runs' thread CPU time (a
                # system call, ~1 us), read only for kinds already remembered;
                # other runs are timed by the cheap wall clock, and one that
                # takes long makes its kind a candidate, measured next time
                tracked = self.cpu_handlers is not None and kind is not None
                measured = tracked and kind in self._cost
                heavy = measured and self._is_heavy(kind)
                started = cpu = 0.0
                if heavy:
                    cpu = time.thread_time()
                    self._heavy[number] = _HeavyRun(clock, cpu, time.monotonic())
                # held work needs a standby too: this worker may have been it
                if self._ready or self._held:
                    self._wake_one()
            if measured and not heavy:  # outside the lock
                cpu = time.thread_time()
            elif tracked and not measured:
                started = time.monotonic()
            try:
                task()
            except Exception:
                log.exception("event handler failed")
            finally:
                # an idle worker must not keep its last event (and the
                # connection it closes over) alive while it waits
                task = None  # type: ignore[assignment]
                cost = time.thread_time() - cpu if measured else 0.0
                took = time.monotonic() - started if tracked and not measured else 0.0
                waiters = None
                with self._lock:
                    if heavy:
                        del self._heavy[number]
                    if measured:
                        self._learn(kind, cost)
                    elif took >= self.cpu_heavy / 2:
                        self._suspect(kind)
                    self._busy -= 1
                    self._pending -= 1
                    del self._marks[number]
                    self._space_cv.notify()
                    if self._space_waiters and self._pending < self.max_pending:
                        waiters, self._space_waiters = self._space_waiters, []
                    queue = self._queues.get(key)  # None once stop() cleared it
                    if queue:
                        self._ready.append(key)  # back of the line: fairness
                    elif queue is not None:
                        del self._queues[key]
                for callback in waiters or ():
                    try:
                        callback()
                    except Exception:
                        log.exception("pool space callback failed")

    def stop(self, timeout: float = 5.0) -> None:
        """Let the workers finish the events in hand, then exit."""
        with self._lock:
            self._stopping = True
            self._ready.clear()
            self._held.clear()
            self._queues.clear()
            self._ready_cv.notify_all()
            self._space_cv.notify_all()
        for thread in self._threads:
            thread.join(timeout)
