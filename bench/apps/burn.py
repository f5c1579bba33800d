"""The CPU handler's work, shared by every Python server under test.

A bounded pure-Python loop: the same number of iterations everywhere
(``BENCH_CPU_ITERS``, calibrated once by bench/run.py to take 50 ms on the
server's core), so each server does the same work, not the same wall time.
"""
from __future__ import annotations

import os
import sys
import time


def iterations() -> int:
    return int(os.environ.get("BENCH_CPU_ITERS", "200000"))


def burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def calibrate(target_s: float = 0.050, probe: int = 200_000, tries: int = 15) -> int:
    """Iterations that take ``target_s``: best (least disturbed) of ``tries`` probes."""
    best = min(_timed(probe) for _ in range(tries))
    return max(1, int(probe * target_s / best))


def _timed(n: int) -> float:
    t0 = time.perf_counter()
    burn(n)
    return time.perf_counter() - t0


if __name__ == "__main__" and sys.argv[1:] == ["--calibrate"]:
    print(calibrate())
