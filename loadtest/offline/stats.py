"""Seed 000's benchmark statistics from per-iteration latencies, and its printed format.

``images/sec`` is ``batch_size * iterations / sum(latencies)`` (time spent inside the model
calls, warm-up excluded), as in TensorRT's image_classification.py; ``total_time(s)`` is that
sum. Percentiles come from the suite's statistics module (linear interpolation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from tfsuite.loadtest.stats import percentiles

__all__ = ["LatencyStats", "format_seed000", "format_steps", "summarise"]

#: Share cut from each end for the trimmed mean (robust against scheduler hiccups on shared CPUs).
TRIM_FRACTION = 0.05


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one case's measured iterations (warm-up excluded)."""

    iterations: int
    """Measured iterations."""
    batch_size: int
    images_per_sec: float
    """batch_size * iterations / total_time_s."""
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    trimmed_mean_ms: float
    """Mean after cutting TRIM_FRACTION of the iterations from each end."""
    min_ms: float
    max_ms: float
    total_time_s: float
    """Sum of the measured iterations' latencies."""

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def summarise(latencies_ns: Sequence[int] | np.ndarray, batch_size: int) -> LatencyStats:
    """Statistics of ``latencies_ns`` (one entry per measured iteration)."""
    arr = np.asarray(latencies_ns, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("no measured iterations")
    ms = arr / 1e6
    total_s = float(arr.sum() / 1e9)
    ordered = np.sort(ms)
    cut = int(len(ordered) * TRIM_FRACTION)
    trimmed = ordered[cut : len(ordered) - cut] if len(ordered) > 2 * cut else ordered
    p50, p90, p99 = percentiles(ms, (50, 90, 99))
    return LatencyStats(
        iterations=int(arr.size),
        batch_size=batch_size,
        images_per_sec=batch_size * arr.size / total_s if total_s > 0 else 0.0,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        mean_ms=float(ms.mean()),
        trimmed_mean_ms=float(trimmed.mean()),
        min_ms=float(ordered[0]),
        max_ms=float(ordered[-1]),
        total_time_s=total_s,
    )


def format_steps(latencies_ns: Sequence[int], batch_size: int, every: int) -> str:
    """Seed 000's ``--display_every`` lines, from the recorded times (nothing printed while timing).

    ``iter_time(ms)`` is the mean of the ``every`` iterations ending at that step.
    """
    lines = []
    total = len(latencies_ns)
    for end in range(every, total + 1, every):
        window = latencies_ns[end - every : end]
        iter_ms = sum(window) / len(window) / 1e6
        ips = batch_size * 1000 / iter_ms if iter_ms > 0 else 0.0
        lines.append(f"    step {end}/{total}, iter_time(ms)={iter_ms:.4f}, images/sec={ips:.0f}\n")
    return "".join(lines)


def format_seed000(title: str, model: str, stats: LatencyStats, steps: str = "") -> str:
    """One case in seed 000's layout (``results of <model>:`` + six indented lines)."""
    return (
        f"=========={title}\n"
        f"{steps}"
        f"results of {model}:\n"
        f"    images/sec: {stats.images_per_sec:.0f}\n"
        f"    99th_percentile(ms): {stats.p99_ms:.2f}\n"
        f"    total_time(s): {stats.total_time_s:.1f}\n"
        f"    latency_mean(ms): {stats.mean_ms:.2f}\n"
        f"    latency_median(ms): {stats.p50_ms:.2f}\n"
        f"    latency_min(ms): {stats.min_ms:.2f}\n"
    )
