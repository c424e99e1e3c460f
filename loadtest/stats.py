"""The suite's one statistics module: percentiles, HDR latency histograms, bootstrap CIs.

Used by the offline benchmark (exact percentiles over every iteration), the online engine
and Locust runs (HdrHistogram recorders, merged across windows, repeats and processes), and
the clients' CLIs (exact percentiles of a short run).

* :func:`percentiles` — exact, numpy's linear interpolation (the offline benchmark's and
  seed 000's convention).
* :class:`LatencyHistogram` — HdrHistogram in microseconds, 1 us .. 60 s, 3 significant
  digits (values above 60 s are clamped to it and counted in ``clamped``). Its compressed
  base64 form (:meth:`LatencyHistogram.encode`) merges losslessly into another histogram
  (:meth:`LatencyHistogram.add_encoded`): that is how windows, repeats and Locust workers
  are combined, and no per-request list is ever kept.
* :func:`bootstrap_ci` — a percentile-bootstrap confidence interval over repeats.
* :func:`early_stopping_min_queries` — MLPerf LoadGen's early-stopping bound: how many
  queries a run needs before it may claim a latency percentile at a confidence.

Nothing here imports TensorFlow: a load-generator process uses it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from hdrh.histogram import HdrHistogram

from tfsuite.loadtest.results import LatencySummary

__all__ = [
    "HIGHEST_US",
    "LOWEST_US",
    "SIGNIFICANT_DIGITS",
    "SUMMARY_PERCENTILES",
    "LatencyHistogram",
    "bootstrap_ci",
    "early_stopping_min_queries",
    "percentile",
    "percentiles",
    "summary_of",
]

#: HdrHistogram range and precision (microseconds): 1 us .. 60 s, 3 significant digits.
LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT_DIGITS = 3

#: The percentiles every latency summary reports (``LatencySummary`` keys).
SUMMARY_PERCENTILES: dict[str, float] = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


def percentiles(values: Sequence[float] | np.ndarray, qs: Iterable[float]) -> list[float]:
    """Exact percentiles (0..100) of ``values`` by linear interpolation; NaN when empty."""
    qs = list(qs)
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return [math.nan] * len(qs)
    return [float(v) for v in np.percentile(arr, qs)]


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """One exact percentile (0..100); NaN when ``values`` is empty."""
    return percentiles(values, [q])[0]


def summary_of(values_ms: Sequence[float] | np.ndarray) -> LatencySummary:
    """A :class:`LatencySummary` of exact values in ms (short runs that keep every value)."""
    arr = np.asarray(values_ms, dtype=np.float64)
    if arr.size == 0:
        return LatencySummary(count=0)
    named = dict(zip(SUMMARY_PERCENTILES, percentiles(arr, SUMMARY_PERCENTILES.values())))
    return LatencySummary(
        count=int(arr.size), max=float(arr.max()), mean=float(arr.mean()), **named
    )


class LatencyHistogram:
    """An HdrHistogram of latencies in microseconds (1 us .. 60 s, 3 significant digits)."""

    __slots__ = ("_h", "clamped")

    def __init__(self) -> None:
        self._h = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
        self.clamped = 0
        """Values above 60 s, recorded as 60 s (HdrHistogram would drop them silently)."""

    # -- recording ---------------------------------------------------------------------------
    def record_us(self, us: float, count: int = 1) -> None:
        value = int(us + 0.5)
        if value > HIGHEST_US:
            value = HIGHEST_US
            self.clamped += count
        elif value < LOWEST_US:
            value = LOWEST_US
        self._h.record_value(value, count)

    def record_seconds(self, seconds: float) -> None:
        self.record_us(seconds * 1e6)

    def record_ms(self, ms: float) -> None:
        self.record_us(ms * 1e3)

    # -- merging -----------------------------------------------------------------------------
    def add(self, other: LatencyHistogram) -> None:
        """Add ``other``'s counts (lossless: same range and precision)."""
        if other.count:
            self._h.add(other._h)
        self.clamped += other.clamped

    def encode(self) -> str:
        """HdrHistogram's compressed base64 form (``decode_and_add`` reads it back)."""
        return self._h.encode().decode("ascii")

    def add_encoded(self, encoded: str | bytes) -> None:
        """Merge a histogram encoded by :meth:`encode` (another process, repeat or window)."""
        raw = encoded.encode("ascii") if isinstance(encoded, str) else encoded
        self._h.decode_and_add(raw)

    @classmethod
    def decode(cls, encoded: str | bytes) -> LatencyHistogram:
        histogram = cls()
        histogram.add_encoded(encoded)
        return histogram

    @classmethod
    def merged(cls, histograms: Iterable[LatencyHistogram]) -> LatencyHistogram:
        total = cls()
        for h in histograms:
            total.add(h)
        return total

    def reset(self) -> None:
        self._h.reset()
        self.clamped = 0

    # -- reading -----------------------------------------------------------------------------
    @property
    def count(self) -> int:
        return int(self._h.get_total_count())

    def percentile_ms(self, q: float) -> float | None:
        """The value at percentile ``q`` (0..100), ms; None when empty."""
        if not self.count:
            return None
        return self._h.get_value_at_percentile(q) / 1e3

    def max_ms(self) -> float | None:
        return self._h.get_max_value() / 1e3 if self.count else None

    def mean_ms(self) -> float | None:
        return self._h.get_mean_value() / 1e3 if self.count else None

    def summary(self) -> LatencySummary:
        """The figures ``results.json`` reports (``count``, p50 .. p999, max, mean), in ms."""
        if not self.count:
            return LatencySummary(count=0)
        named = {k: self.percentile_ms(q) for k, q in SUMMARY_PERCENTILES.items()}
        return LatencySummary(count=self.count, max=self.max_ms(), mean=self.mean_ms(), **named)


def bootstrap_ci(
    samples: Sequence[float],
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile-bootstrap confidence interval of ``statistic`` over ``samples`` (repeats).

    None with fewer than two samples (one repeat says nothing about spread). Seeded, so the
    same repeats always give the same interval.
    """
    arr = np.asarray([s for s in samples if s is not None and not math.isnan(s)], dtype=float)
    if arr.size < 2:
        return None
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, arr.size, size=(resamples, arr.size))
    stats = np.apply_along_axis(statistic, 1, arr[picks])
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def early_stopping_min_queries(percentile: float = 99.0, confidence: float = 0.99) -> int:
    """MLPerf LoadGen's early-stopping minimum: the fewest queries that let a run claim that
    ``percentile`` of latencies lies at or below the value observed, at ``confidence``, when
    no query exceeded it (P[all n under] = p**n <= 1 - confidence)."""
    p = percentile / 100.0
    if not 0.0 < p < 1.0 or not 0.0 < confidence < 1.0:
        raise ValueError("percentile must be in (0, 100) and confidence in (0, 1)")
    return math.ceil(math.log(1.0 - confidence) / math.log(p))
