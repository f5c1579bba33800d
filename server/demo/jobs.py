"""The '/jobs' namespace: a CPU-heavy job that streams its progress.

# design: the job runs in the handler-pool thread that handles the
# ``primes`` event.  The pool handles the events of one client and
# namespace in order, so this client's next '/jobs' events wait for the job
# (its chat on '/' does not).  At most ``max_running`` jobs run at once per
# process, so a page cannot take every handler thread: a semaphore taken without waiting
# refuses the extra job.  Progress events go to the requesting client only,
# at most ten a second; the result comes back as the event's ack.
"""
from __future__ import annotations

import threading
import time
from typing import Any

from flask import session

from server import Namespace, emit

from .primes import sieve
from .validate import BadInput, job_limit, name_from_auth

PROGRESS_EVERY = 0.1  # seconds between progress events


class JobsNamespace(Namespace):
    def __init__(self, namespace: str = "/jobs", max_running: int = 2) -> None:
        super().__init__(namespace)
        self.max_running = max_running
        self._slots = threading.BoundedSemaphore(max_running)

    def on_connect(self, auth: Any) -> None:
        # the Flask session is shared with '/', but this namespace may be
        # connected first, so it checks the name itself
        session["name"] = name_from_auth(auth)

    def on_primes(self, limit: Any) -> dict[str, Any]:
        limit = job_limit(limit)
        if not self._slots.acquire(blocking=False):
            raise BadInput(f"the server already runs {self.max_running} jobs; "
                             f"try again when one has finished")
        try:
            started = time.perf_counter()
            last_report = 0.0
            for step in sieve(limit):
                now = time.perf_counter()
                if now - last_report >= PROGRESS_EVERY or step.done == limit:
                    last_report = now
                    emit("progress", {"done": step.done, "limit": limit,
                                      "primes": step.primes})
            return {"limit": limit, "primes": step.primes, "largest": step.largest,
                    "seconds": round(time.perf_counter() - started, 3),
                    "by": session.get("name")}
        finally:
            self._slots.release()
