"""The timed loop of one bench case and the cost of its own bookkeeping.

Each iteration is bracketed by two ``time.perf_counter_ns()`` calls and two list appends; the
warm-up iterations are run first and not recorded. ``measure_overhead`` times the very same
loop around a no-op, which is what the loop adds to every measured iteration.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Measurement", "measure", "measure_overhead"]


@dataclass
class Measurement:
    """Raw timings of one case (nanoseconds, ``perf_counter_ns`` clock)."""

    warmup_start_ns: int
    warmup_end_ns: int
    starts_ns: list[int] = field(default_factory=list)
    latencies_ns: list[int] = field(default_factory=list)


def measure(
    call: Callable[[], object],
    *,
    warmup: int,
    iterations: int | None,
    duration_s: float | None,
) -> Measurement:
    """Run ``warmup`` untimed calls, then ``iterations`` timed calls or timed calls for ``duration_s``."""
    clock = time.perf_counter_ns
    warm_start = clock()
    for _ in range(warmup):
        call()
    m = Measurement(warmup_start_ns=warm_start, warmup_end_ns=clock())
    add_start = m.starts_ns.append
    add_latency = m.latencies_ns.append
    if duration_s is not None:
        deadline = clock() + int(duration_s * 1e9)
        while True:
            t0 = clock()
            call()
            t1 = clock()
            add_start(t0)
            add_latency(t1 - t0)
            if t1 >= deadline:
                break
    else:
        for _ in range(iterations or 0):
            t0 = clock()
            call()
            t1 = clock()
            add_start(t0)
            add_latency(t1 - t0)
    return m


def _noop() -> None:
    return None


def measure_overhead(iterations: int = 20_000, repeats: int = 5) -> float:
    """Nanoseconds the loop adds per iteration (best of ``repeats`` runs of the no-op loop)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter_ns()
        measure(_noop, warmup=0, iterations=iterations, duration_s=None)
        best = min(best, (time.perf_counter_ns() - start) / iterations)
    return best
