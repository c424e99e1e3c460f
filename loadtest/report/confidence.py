"""Confidence intervals for the report's "within noise" calls.

A difference between two versions is called *within noise* when their 95% confidence
intervals overlap. The intervals come from ``--repeats`` (one value per repeat) when a run
has them, and otherwise from the step's fixed measurement windows (one value per window) —
a weaker estimate, so the report says which one it used.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["Interval", "IntervalSource", "mean_interval"]

IntervalSource = Literal["repeats", "windows"]

#: Two-sided 95% Student-t quantiles by degrees of freedom (1..30); beyond, the normal's.
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


@dataclass(frozen=True)
class Interval:
    """A 95% confidence interval of a mean, and what it was computed from."""

    mean: float
    low: float
    high: float
    n: int
    source: IntervalSource

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0


def _t95(df: int) -> float:
    if df <= len(_T95):
        return _T95[df - 1]
    return statistics.NormalDist().inv_cdf(0.975)


def mean_interval(values: Sequence[float], source: IntervalSource) -> Interval | None:
    """The 95% t-interval of the mean of ``values``; None with fewer than two values."""
    clean = [float(v) for v in values if v is not None and math.isfinite(v)]
    if len(clean) < 2:
        return None
    mean = statistics.fmean(clean)
    half = _t95(len(clean) - 1) * statistics.stdev(clean) / math.sqrt(len(clean))
    return Interval(mean, mean - half, mean + half, len(clean), source)
