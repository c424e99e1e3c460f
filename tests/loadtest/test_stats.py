"""loadtest/stats.py: the one statistics module (exact percentiles, HDR histograms, CIs)."""

from __future__ import annotations

import math
import multiprocessing

import numpy as np
import pytest

from tfsuite.loadtest.stats import (
    HIGHEST_US,
    LatencyHistogram,
    bootstrap_ci,
    early_stopping_min_queries,
    percentile,
    percentiles,
    summary_of,
)


def test_exact_percentiles_match_numpy_and_nan_when_empty() -> None:
    values = np.random.default_rng(3).exponential(5.0, 1001)
    assert percentiles(values, (50, 99)) == pytest.approx(np.percentile(values, [50, 99]))
    assert math.isnan(percentile([], 50))
    s = summary_of(values)
    assert s.count == 1001 and s.p999 == pytest.approx(np.percentile(values, 99.9))
    assert summary_of([]).count == 0 and summary_of([]).p50 is None


def test_hdr_histogram_summary_within_three_significant_digits() -> None:
    rng = np.random.default_rng(0)
    ms = rng.lognormal(mean=2.0, sigma=0.8, size=20_000)
    h = LatencyHistogram()
    for v in ms:
        h.record_ms(float(v))
    s = h.summary()
    assert s.count == 20_000
    for key, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9)):
        exact = float(np.percentile(ms, q))
        # 3 significant digits: the recorded value is within 0.1% of the true one (plus the
        # rank step between neighbouring samples).
        assert getattr(s, key) == pytest.approx(exact, rel=3e-3), key
    assert s.max == pytest.approx(ms.max(), rel=1e-3)
    assert s.mean == pytest.approx(ms.mean(), rel=1e-3)


def test_hdr_histogram_clamps_above_60s_and_counts_it() -> None:
    h = LatencyHistogram()
    h.record_seconds(75.0)
    h.record_seconds(0.0)  # below 1 us: recorded as 1 us
    assert h.count == 2 and h.clamped == 1
    assert h.max_ms() == pytest.approx(HIGHEST_US / 1e3, rel=1e-3)


def _encoded_from_another_process(seed: int) -> str:
    h = LatencyHistogram()
    for v in np.random.default_rng(seed).uniform(1, 50, 5000):
        h.record_ms(float(v))
    return h.encode()


def test_hdr_histograms_merge_losslessly_across_processes() -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        encoded = pool.map(_encoded_from_another_process, [1, 2])
    merged = LatencyHistogram()
    for e in encoded:
        merged.add_encoded(e)
    local = LatencyHistogram.merged(LatencyHistogram.decode(e) for e in encoded)
    # the same histogram recorded in one process
    direct = LatencyHistogram()
    for seed in (1, 2):
        for v in np.random.default_rng(seed).uniform(1, 50, 5000):
            direct.record_ms(float(v))
    assert merged.count == direct.count == 10_000
    for q in (50, 90, 99, 99.9, 100):
        assert merged.percentile_ms(q) == direct.percentile_ms(q) == local.percentile_ms(q)
    assert merged.encode() == direct.encode()


def test_bootstrap_ci_brackets_the_mean_and_needs_two_samples() -> None:
    samples = [100.0, 102.0, 98.0, 101.0, 99.0]
    lo, hi = bootstrap_ci(samples)  # type: ignore[misc]
    assert lo <= np.mean(samples) <= hi and hi - lo < 4.0
    assert bootstrap_ci(samples) == bootstrap_ci(samples)  # seeded
    assert bootstrap_ci([1.0]) is None


def test_early_stopping_bound_is_mlperf_binomial_zero_overlatency() -> None:
    n = early_stopping_min_queries(99.0, 0.99)
    assert 0.99**n <= 0.01 < 0.99 ** (n - 1)
    assert early_stopping_min_queries(90.0) < n < early_stopping_min_queries(99.9)
