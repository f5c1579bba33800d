# design:
#   CPython's cyclic collector runs a full pass whenever the objects that
#   survived into its oldest generation have grown by a quarter since the
#   last one, and a full pass walks every tracked object in the process.
#   A server that gains connections grows that generation steadily (each
#   open connection keeps ~100 tracked objects: sockets, sessions, dicts),
#   so full passes come in a row while clients connect, each longer than
#   the last: measured 350-530 ms with 5,000 clients on a small machine
#   (docs/performance.md), every thread of the process stopped meanwhile.
#   Objects that live as long as their connection do not need those passes:
#   they are freed by reference counting when the connection closes.
#   GCPacer moves them out of the collector's sight with gc.freeze() as the
#   number of sessions grows, so full passes only walk what is young.
#   Who runs it: one reactor timer per Engine.IO server (tick()), started
#   with the first session; gc calls are made on the reactor thread and
#   never while holding a lock.  Each tick reads two integers and usually
#   does nothing.
#   The cost: cyclic garbage among frozen objects is not collected until the
#   next reclaim (gc.unfreeze() + a full pass), which runs when the sessions
#   have fallen to a quarter of the frozen peak and stopped falling (a small
#   heap, a short pass, at a quiet moment: not while thousands of clients are
#   leaving, when half the heap is still alive; at most `patience` seconds
#   late) or when
#   as many sessions have closed as twice that peak (one full pass per that
#   many closed connections; CPython's own policy runs one per quarter of
#   growth).  Our own connection objects leave no cycles behind (tested), so
#   what waits for a reclaim is only the application's.
#   A reclaim's pass walks the whole heap (50 ms at start-up on the 2-core
#   benchmark machine), so it is skipped when memory says there is nothing to
#   find: pymalloc's allocated blocks (sys.getallocatedblocks, a counter read)
#   are compared with what the open sessions should hold (blocks per session
#   measured at the last freeze, over the level after the last pass).  Less
#   than a quarter of the frozen peak's blocks above that: the closed
#   sessions were freed by reference counting, and the pass is skipped.
#   Fork: the state belongs to the process that ticked; a child starts over
#   (what its parent froze stays frozen, so it skips the start-up pass).
"""Keeps CPython's full garbage-collection passes short on servers holding many connections."""
from __future__ import annotations

import gc
import logging
import os
import sys
import time
from collections.abc import Callable

log = logging.getLogger("server.gc")


class GCPacer:
    """Freezes long-lived objects as the number of open sessions grows.

    ``open_sessions`` and ``opened_sessions`` return how many sessions are
    open now and how many have been opened since the server started.
    ``growth`` is the smallest increase of open sessions worth a freeze.
    """

    #: seconds between ticks
    interval = 1.0
    #: seconds a reclaim waits for the session count to stop changing
    patience = 30.0

    def __init__(self, open_sessions: Callable[[], int], opened_sessions: Callable[[], int],
                 growth: int = 50, blocks: Callable[[], int] = sys.getallocatedblocks) -> None:
        self.open_sessions = open_sessions
        self.opened_sessions = opened_sessions
        self.growth = growth
        self.blocks = blocks
        self.skipped = 0           # reclaims found not worth a full pass
        self._base_blocks = 0      # allocated blocks with no session open, after a pass
        self._session_blocks = 0.0  # blocks per open session, at the last freeze
        self._pid = 0
        self.frozen_peak = 0       # open sessions at the last freeze
        self.closed_at_reclaim = 0  # sessions closed before the last reclaim
        self.freezes = 0
        self.reclaims = 0
        self._last_counts = (-1, -1)   # (open, opened) at the previous tick
        self._fell_at: float | None = None  # when sessions fell to a quarter of the peak

    def tick(self) -> None:
        """Freeze or reclaim if the session count asks for it (reactor thread)."""
        now_open, opened = self.open_sessions(), self.opened_sessions()
        closed = max(0, opened - now_open)
        quiet, self._last_counts = self._last_counts == (now_open, opened), (now_open, opened)
        fallen = self.frozen_peak >= 4 * self.growth and now_open <= self.frozen_peak // 4
        if not fallen:
            self._fell_at = None
        elif self._fell_at is None:
            self._fell_at = time.monotonic()
        if self._pid != os.getpid():
            # the first tick of this process: what the application built at
            # start-up lives as long as the process does.  One full pass per
            # process is enough: a parent that froze before fork(), or another
            # server in this process, has done it already.
            self._pid = os.getpid()
            self.closed_at_reclaim = closed
            # the memory level the reclaim check measures sessions from; the
            # start-up pass measures it again, a child of a frozen parent
            # (which skips that pass) must not measure from zero
            self._session_blocks = 0.0
            self._base_blocks = self.blocks()
            if gc.get_freeze_count():
                self._freeze(now_open)
            else:
                self._reclaim(now_open, "start-up")
        elif fallen and (quiet or time.monotonic() - (self._fell_at or 0) >= self.patience):
            self._reclaim_if_worth_it(now_open, "sessions fell to a quarter of the frozen peak")
        elif closed - self.closed_at_reclaim >= 2 * max(self.frozen_peak, self.growth):
            self._reclaim_if_worth_it(now_open, "twice the frozen peak of sessions closed")
        elif now_open >= self.frozen_peak + max(self.growth, self.frozen_peak // 10):
            self._freeze(now_open)

    def _freeze(self, now_open: int) -> None:
        started = time.perf_counter()
        gc.collect(1)  # young garbage first: only survivors are frozen
        gc.freeze()
        if now_open > 0:
            self._session_blocks = max(0, self.blocks() - self._base_blocks) / now_open
        self.frozen_peak = now_open
        self.freezes += 1
        log.debug("gc: froze at %d open sessions in %.1f ms", now_open,
                  (time.perf_counter() - started) * 1000)

    def _reclaim_if_worth_it(self, now_open: int, why: str) -> None:
        held = self._base_blocks + now_open * self._session_blocks
        excess = self.blocks() - held
        if excess >= self.frozen_peak * self._session_blocks / 4:
            self._reclaim(now_open, why)
            return
        self._reset(now_open)
        self.skipped += 1
        log.debug("gc: no full pass (%s): %d allocated blocks above what %d open sessions "
                  "hold, under a quarter of the frozen peak's", why, excess, now_open)

    def _reclaim(self, now_open: int, why: str) -> None:
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        self._base_blocks = max(0, self.blocks() - int(now_open * self._session_blocks))
        self._reset(now_open)
        self.reclaims += 1
        log.debug("gc: full pass (%s): %d unreachable objects, %.1f ms", why, found,
                  (time.perf_counter() - started) * 1000)

    def _reset(self, now_open: int) -> None:
        self.frozen_peak = now_open
        self.closed_at_reclaim = max(0, self.opened_sessions() - self.open_sessions())
        self._fell_at = None
