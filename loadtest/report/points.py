"""One point per (version, mode, load): the repeats of a step folded together.

Percentiles of repeated steps are read from their merged HdrHistograms when every repeat
carries one (lossless, as HdrHistogram intends), else averaged. Throughput and p99 carry a
95% interval: across repeats when there are several, across the measurement windows of the
one step otherwise (see :mod:`.confidence`).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from tfsuite.loadtest.report.confidence import Interval, interval_of
from tfsuite.loadtest.report.runs import Run, VersionKey, measured_steps
from tfsuite.loadtest.results import ConfidenceInterval, HistogramDelta, Mode, Step

__all__ = ["LoadPoint", "load_points", "mean_of", "merge_histograms"]

_PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


def mean_of(values: Iterable[float | None]) -> float | None:
    clean = [v for v in values if v is not None]
    return statistics.fmean(clean) if clean else None


def merge_histograms(deltas: Iterable[HistogramDelta | None]) -> HistogramDelta | None:
    """Sum of Prometheus histogram deltas (count, sum and every cumulative bucket)."""
    present = [d for d in deltas if d is not None]
    if not present:
        return None
    buckets: dict[str, float] = {}
    for delta in present:
        for le, n in delta.buckets.items():
            buckets[le] = buckets.get(le, 0.0) + n
    return HistogramDelta(
        count=sum(d.count for d in present), sum=sum(d.sum for d in present), buckets=buckets
    )


def _hdr_percentiles(encoded: Sequence[str]) -> dict[str, float]:
    merged = HdrHistogram.decode(encoded[0])
    for more in encoded[1:]:
        merged.decode_and_add(more)
    at = merged.get_percentile_to_value_dict(list(_PERCENTILES.values()))  # one pass
    found = {name: at[q] / 1000.0 for name, q in _PERCENTILES.items()}
    found["max"] = merged.get_max_value() / 1000.0
    return found


@dataclass
class LoadPoint:
    """One version at one load (all repeats of that step)."""

    key: VersionKey
    mode: Mode
    target: float
    batch_size: int
    steps: list[Step] = field(repr=False)
    rps: float = 0.0
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    p999: float | None = None
    max: float | None = None
    uncorrected_p99: float | None = None
    rps_interval: Interval | None = None
    p99_interval: Interval | None = None
    queue_ms: float | None = None
    """Server-side mean queueing delay (batching), from the step's metric deltas."""

    @property
    def stable(self) -> bool:
        return all(s.stable for s in self.steps)

    @property
    def client_bound(self) -> bool:
        return any(s.client_bound.flag for s in self.steps)

    @property
    def trusted(self) -> bool:
        """Stable and not limited by the load generator: fit to judge a version by."""
        return self.stable and not self.client_bound

    @property
    def repeats(self) -> int:
        return len(self.steps)

    @property
    def errors(self) -> int:
        return sum(sum(s.errors_by_code.values()) for s in self.steps)


def _fold(
    key: VersionKey, steps: list[Step], intervals: dict[str, Interval] | None = None
) -> LoadPoint:
    first = steps[0]
    point = LoadPoint(key, first.mode, first.target, first.batch_size, steps)
    point.rps = statistics.fmean(s.achieved_rps for s in steps)
    encoded = [s.hdr for s in steps if s.hdr]
    if len(encoded) == len(steps):
        pooled = _hdr_percentiles(encoded)
    else:
        pooled = {
            "p50": mean_of(s.latency_ms.p50 for s in steps),
            "p90": mean_of(s.latency_ms.p90 for s in steps),
            "p99": mean_of(s.latency_ms.p99 for s in steps),
            "p999": mean_of(s.latency_ms.p999 for s in steps),
            "max": max(
                (s.latency_ms.max for s in steps if s.latency_ms.max is not None), default=None
            ),
        }
    point.p50, point.p90, point.p99 = pooled["p50"], pooled["p90"], pooled["p99"]
    point.p999, point.max = pooled["p999"], pooled["max"]
    point.uncorrected_p99 = mean_of(
        s.latency_ms.uncorrected.p99 if s.latency_ms.uncorrected else None for s in steps
    )
    engine = intervals or {}
    if len(steps) >= 2:
        point.rps_interval = engine.get("achieved_rps") or interval_of(
            (s.achieved_rps for s in steps), "repeats"
        )
        point.p99_interval = engine.get("p99_ms") or interval_of(
            (s.latency_ms.p99 for s in steps), "repeats"
        )
    elif len(first.windows) >= 3:
        point.rps_interval = interval_of((w.rps for w in first.windows), "windows")
        point.p99_interval = interval_of((w.p99_ms for w in first.windows), "windows")
    queue = merge_histograms(s.server.queuing_latency_us if s.server else None for s in steps)
    if queue is not None and queue.count > 0:
        point.queue_ms = queue.sum / queue.count / 1000.0
    return point


def _engine_intervals(
    found: list[ConfidenceInterval],
) -> dict[tuple[str, int, str, float], dict[str, Interval]]:
    """The engine's bootstrap intervals over repeats, by (model, version, mode, target)."""
    out: dict[tuple[str, int, str, float], dict[str, Interval]] = {}
    for ci in found:
        if ci.repeats >= 2:
            key = (ci.model, ci.version, ci.mode, ci.target)
            out.setdefault(key, {})[ci.figure] = Interval(ci.low, ci.high, ci.repeats, "repeats")
    return out


def load_points(run: Run) -> list[LoadPoint]:
    """Every measured load of every version in ``run``, sorted by version, mode, load."""
    groups: dict[tuple[str, int, str, float, int], list[Step]] = {}
    for step in measured_steps(run.results):
        groups.setdefault(
            (step.model, step.version, step.mode, step.target, step.batch_size), []
        ).append(step)
    engine = _engine_intervals(run.results.intervals)
    return [
        _fold(run.key(model, version), steps, engine.get((model, version, mode, target)))
        for (model, version, mode, target, _), steps in sorted(groups.items())
    ]
