"""Confidence intervals for the report's "within noise" calls.

A difference between two versions is called *within noise* when their 95% confidence
intervals overlap. The intervals are the engine's own bootstrap intervals over ``--repeats``
(``results.intervals``) when the run has them, else the same bootstrap (the suite's one
statistics module, :func:`tfsuite.loadtest.stats.bootstrap_ci`) over the repeats' values,
else over the step's fixed measurement windows — a weaker estimate, so the report says
which one it used.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from tfsuite.loadtest.stats import bootstrap_ci

__all__ = ["Interval", "IntervalSource", "interval_of"]

IntervalSource = Literal["repeats", "windows"]


@dataclass(frozen=True)
class Interval:
    """A 95% confidence interval of a mean, and what it was computed from."""

    low: float
    high: float
    n: int
    source: IntervalSource

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0


def interval_of(values: Iterable[float | None], source: IntervalSource) -> Interval | None:
    """The 95% bootstrap interval of the mean of ``values``; None with fewer than two."""
    clean = [float(v) for v in values if v is not None]
    found = bootstrap_ci(clean)
    if found is None:
        return None
    return Interval(found[0], found[1], len(clean), source)
