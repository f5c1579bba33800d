"""The demo's CPU job: count the primes below a limit with a segmented sieve.

Real CPU work, bounded in size, that reports progress after every segment so
the page can draw a progress bar.  Each segment is crossed off with bytearray
slice assignments: C-speed steps short enough (a segment is 128 KiB) that the
interpreter switches threads between them, so the other clients of the same
process keep being served while a job runs.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

#: the largest limit a client may ask for: about ten seconds of one core
MAX_LIMIT = 1_000_000_000
SEGMENT = 1 << 17


@dataclass(frozen=True)
class Progress:
    done: int  # numbers below `done` have been sieved
    limit: int
    primes: int  # primes found below `done`
    largest: int | None  # the largest of them

    @property
    def fraction(self) -> float:
        return self.done / self.limit if self.limit else 1.0


def _base_primes(upto: int) -> list[int]:
    """The primes <= upto, by a plain sieve (upto is at most a few thousand)."""
    flags = bytearray([1]) * (upto + 1)
    flags[:2] = b"\x00\x00"[: upto + 1]
    for p in range(2, math.isqrt(upto) + 1):
        if flags[p]:
            flags[p * p :: p] = bytes(len(range(p * p, upto + 1, p)))
    return [n for n, is_prime in enumerate(flags) if is_prime]


def sieve(limit: int, segment: int = SEGMENT) -> Iterator[Progress]:
    """Sieve the numbers below ``limit``, yielding :class:`Progress` after
    each segment; the last one has ``done == limit``."""
    if limit < 2:
        raise ValueError(f"limit must be 2 or more, not {limit}")
    base = _base_primes(math.isqrt(limit - 1))
    count, largest = 0, None
    for low in range(0, limit, segment):
        high = min(low + segment, limit)
        flags = bytearray([1]) * (high - low)
        for p in base:
            if p * p >= high:
                break
            start = max(p * p, -(-low // p) * p)
            flags[start - low :: p] = bytes(len(range(start, high, p)))
        if low == 0:
            flags[: min(2, high)] = bytes(min(2, high))  # 0 and 1 are not primes
        count += flags.count(1)
        last = flags.rfind(1)
        if last >= 0:
            largest = low + last
        yield Progress(high, limit, count, largest)
