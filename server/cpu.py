# design:
#   CPU-heavy handler work on other cores: one process pool per SocketIO
#   instance (ProcessPool), created on first use, plus the interpreter switch
#   interval setting.
#   - Who blocks: run() blocks the calling handler thread on a Future, which
#     releases the GIL; the transport threads and other handlers go on.  The
#     worker processes hold no sockets and know nothing of Socket.IO.
#   - Start method: 'forkserver' (POSIX) or 'spawn', never plain 'fork'.  The
#     server is multi-threaded; fork() copies only the calling thread, so any
#     lock another thread held at that instant (logging handlers, the handler
#     pool, the import lock, OpenSSL or malloc state) stays locked forever in
#     the child, which then deadlocks at random.  Python 3.12 warns about it.
#   - Progress: a job given ``progress`` receives ``report=`` (a _Reporter),
#     which puts (job id, value) on one queue per pool, served by a Manager
#     process started on first use (a Manager queue proxy can be pickled with
#     each job; a plain multiprocessing queue cannot).  One thread of ours,
#     the drainer, takes values off it and calls the job's ``progress`` in
#     order.  When the job's future is done, a done-callback puts an end
#     marker on the same queue; the drainer then completes the Future it gave
#     the caller, so the result never overtakes the job's progress values.
#   Under uWSGI sys.executable is the uwsgi binary: workers are started with
#   the environment's python3 instead (python_executable()).
#   Lock order: one lock (``_lock``), held to create the pool or the queue and
#   to add or remove a job's routing entry; never while a job or a progress
#   callback runs.
#   On close: shutdown() cancels jobs not started, lets running ones finish in
#   the background (it does not wait), stops the drainer and the Manager.
"""Run handler CPU work in a process pool; the interpreter switch interval."""
from __future__ import annotations

import concurrent.futures as cf
import itertools
import logging
import multiprocessing
import os
import pickle
import sys
import threading
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any

log = logging.getLogger("server.cpu")

_END = "__server.cpu.end__"  # marker: a job's future is done, no more values
_STOP = "__server.cpu.stop__"  # marker: the drainer exits


def apply_switch_interval(seconds: float | None) -> None:
    """Set the interpreter's switch interval; process-wide, so done once at init_app."""
    if seconds is not None and seconds != sys.getswitchinterval():
        sys.setswitchinterval(seconds)


def start_method() -> str:
    """'forkserver' where the platform has it, else 'spawn' (never 'fork': see design)."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def python_executable() -> str:
    """The interpreter a new worker process runs.

    ``sys.executable`` is it, except under uWSGI, where it is the ``uwsgi``
    binary (which would be started with Python's options and refuse them):
    then the environment's own ``bin/python3``.
    """
    exe = sys.executable
    if exe and os.path.basename(exe).startswith("python"):
        return exe
    for prefix in (sys.prefix, sys.exec_prefix, sys.base_prefix):
        for name in (f"python{sys.version_info[0]}.{sys.version_info[1]}", "python3"):
            candidate = os.path.join(prefix, "bin", name)
            if os.access(candidate, os.X_OK):
                return candidate
    return exe


def _call(payload: bytes, report: Callable[[Any], None] | None) -> Any:
    """Runs in the worker: unpack the job pickled in the parent and call it."""
    fn, args, kwargs = pickle.loads(payload)
    if report is not None:
        kwargs["report"] = report
    return fn(*args, **kwargs)


class _Reporter:
    """The ``report(value)`` a job receives: sends the value to the parent."""

    def __init__(self, queue: Any, job: int) -> None:
        self.queue = queue
        self.job = job

    def __call__(self, value: Any) -> None:
        self.queue.put((self.job, value))


class ProcessPool:
    """A lazily started ``ProcessPoolExecutor`` with progress reporting."""

    def __init__(self, size: int | None = None) -> None:
        self.size = size or os.cpu_count() or 1
        self._lock = threading.Lock()
        self._executor: cf.ProcessPoolExecutor | None = None
        self._manager: Any = None
        self._queue: Any = None
        self._drainer: threading.Thread | None = None
        self._routes: dict[int, tuple[Callable[[Any], Any], cf.Future, cf.Future]] = {}
        self._ids = itertools.count(1)
        self._closed = False

    @property
    def started(self) -> bool:
        return self._executor is not None

    def processes(self) -> list[Any]:
        """The worker processes alive now (multiprocessing.Process objects)."""
        executor = self._executor
        procs = getattr(executor, "_processes", None) or {}  # pinned by tests/test_cpu.py
        return list(procs.values())

    def submit(self, fn: Callable, *args: Any, progress: Callable[[Any], Any] | None = None,
               **kwargs: Any) -> cf.Future:
        """Start ``fn(*args, **kwargs)`` in a worker process; return its Future."""
        try:
            # pickled once here: a clear error now, and the executor only copies bytes
            payload = pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            name = getattr(fn, "__qualname__", repr(fn))
            raise TypeError(
                f"run_in_process/submit_process needs a picklable function and arguments: "
                f"{name} with its arguments cannot be pickled ({exc}). Fix: define the "
                f"function at module level (not a lambda, closure or method of a local "
                f"object) and pass plain data (str, numbers, bytes, lists, dicts)") from exc
        with self._lock:
            if self._closed:
                raise RuntimeError("the process pool is shut down (SocketIO.shutdown() "
                                   "was called); no new jobs")
            if progress is None:
                return self._submit(payload, None)
            queue = self._start_queue()
            job = next(self._ids)
            outer: cf.Future = cf.Future()
            inner = self._submit(payload, _Reporter(queue, job))
            self._routes[job] = (progress, inner, outer)
        outer.add_done_callback(lambda f: f.cancelled() and inner.cancel())
        inner.add_done_callback(lambda _f: self._put_end(queue, job))
        return outer

    def run(self, fn: Callable, *args: Any, progress: Callable[[Any], Any] | None = None,
            **kwargs: Any) -> Any:
        """``submit(...).result()``: fn's result, or its exception re-raised here."""
        return self.submit(fn, *args, progress=progress, **kwargs).result()

    def shutdown(self) -> None:
        """Cancel jobs not started; running jobs finish in the background."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
            queue, manager, drainer = self._queue, self._manager, self._drainer
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        if queue is not None:
            try:
                queue.put((0, _STOP))
            except Exception:  # the manager is already gone
                log.debug("stopping the progress drainer failed", exc_info=True)
            if drainer is not None:
                drainer.join(5)
            manager.shutdown()

    # -- internals (called with _lock held) -----------------------------------------
    def _context(self) -> Any:
        context = multiprocessing.get_context(start_method())
        exe = python_executable()
        if exe != sys.executable:
            # process-wide in multiprocessing; only ever replaces a non-Python binary (uWSGI)
            context.set_executable(exe)
        return context

    def _submit(self, payload: bytes, report: _Reporter | None) -> cf.Future:
        executor = self._start_executor()
        try:
            return executor.submit(_call, payload, report)
        except BrokenProcessPool:
            # a worker died (killed, out of memory): the jobs it had failed with
            # BrokenProcessPool; later jobs get a fresh pool rather than the same error
            log.warning("a process pool worker died; starting a new pool")
            executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
            return self._start_executor().submit(_call, payload, report)

    def _start_executor(self) -> cf.ProcessPoolExecutor:
        if self._executor is None:
            context = self._context()
            self._executor = cf.ProcessPoolExecutor(self.size, mp_context=context)
        return self._executor

    def _start_queue(self) -> Any:
        if self._queue is None:
            self._manager = self._context().Manager()
            self._queue = self._manager.Queue()
            self._drainer = threading.Thread(target=self._drain, args=(self._queue,),
                                             name="process-progress", daemon=True)
            self._drainer.start()
        return self._queue

    # -- the drainer thread ---------------------------------------------------------
    def _put_end(self, queue: Any, job: int) -> None:
        try:
            queue.put((job, _END))
        except Exception:  # manager gone (shutdown): complete the job here instead
            self._finish(job)

    def _drain(self, queue: Any) -> None:
        while True:
            try:
                job, value = queue.get()
            except Exception:  # the manager went away under us
                log.debug("progress queue closed", exc_info=True)
                break
            if isinstance(value, str) and value == _STOP:
                break
            if isinstance(value, str) and value == _END:
                self._finish(job)
                continue
            route = self._routes.get(job)
            if route is None:
                continue
            try:
                route[0](value)
            except Exception:
                log.exception("progress callback failed")
        with self._lock:
            jobs = list(self._routes)
        for job in jobs:  # complete whatever is left so that no caller waits forever
            self._routes[job][1].add_done_callback(lambda _f, j=job: self._finish(j))

    def _finish(self, job: int) -> None:
        """Copy the worker's outcome to the Future the caller holds."""
        with self._lock:
            route = self._routes.pop(job, None)
        if route is None:
            return
        _progress, inner, outer = route
        try:
            if inner.cancelled():
                outer.set_exception(cf.CancelledError())
            elif inner.exception() is not None:
                outer.set_exception(inner.exception())
            else:
                outer.set_result(inner.result())
        except cf.InvalidStateError:  # already completed
            pass
