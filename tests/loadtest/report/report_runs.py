"""A realistic small ``results.json``, built through the schema (loadtest/results.py).

Two models as ``tfsuite compare`` measures them: per version a closed-loop sweep and two
open-loop (Poisson) rates; latencies drawn from a seeded queueing-like model, recorded in
real HdrHistograms (microseconds, 3 significant digits, as the engine records them) and
summarised from those histograms; measurement windows; server metric deltas with batch,
padding and queueing histograms in the server's own bucket layout; the SLO result read off
the steps. One step is unstable, one client-bound, so the honesty marks have something to
show.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from hdrh.histogram import HdrHistogram

from tfsuite.loadtest.results import (
    Agreement,
    ClientBound,
    EarlyStopping,
    HistogramDelta,
    LatencySummary,
    Machine,
    Results,
    RunInfo,
    ServerDeltas,
    ServerInfo,
    SloResult,
    Step,
    StepLatency,
    VersionInfo,
    Window,
)

BATCH_BOUNDS = [float(2**i) for i in range(14)]  # the server's _BATCH_BUCKETS
LATENCY_BOUNDS = [10 * 1.8**i for i in range(33)]  # the server's _LATENCY_BUCKETS (us)
ALLOWED_BATCH_SIZES = (1, 2, 4, 8, 16, 32)


@dataclass(frozen=True)
class Variant:
    version: int
    variant: str
    size_bytes: int
    service_ms: float
    """Latency of one request alone."""
    capacity_rps: float
    """Throughput the server saturates at for this version."""
    agreement: Agreement | None


def _hdr(samples_ms: np.ndarray) -> HdrHistogram:
    hist = HdrHistogram(1, 60_000_000, 3)
    us = np.maximum(1.0, samples_ms * 1000.0)
    # Round to the histogram's own precision (3 significant digits) first, so that equal
    # values are recorded once with their count.
    step = 10.0 ** (np.floor(np.log10(us)) - 2)
    values, counts = np.unique(np.round(us / step) * step, return_counts=True)
    for value, count in zip(values.astype(np.int64), counts, strict=True):
        hist.record_value(int(value), int(count))
    return hist


def _summary(hist: HdrHistogram, samples_ms: np.ndarray) -> dict[str, float | int]:
    at = hist.get_percentile_to_value_dict([50.0, 90.0, 99.0, 99.9])
    return {
        "count": hist.get_total_count(),
        "p50": at[50.0] / 1000.0,
        "p90": at[90.0] / 1000.0,
        "p99": at[99.0] / 1000.0,
        "p999": at[99.9] / 1000.0,
        "max": hist.get_max_value() / 1000.0,
        "mean": float(samples_ms.mean()),
    }


def _histogram(values: np.ndarray, bounds: list[float]) -> HistogramDelta:
    buckets = {f"{b:g}" if b < 1e6 else repr(b): float(np.sum(values <= b)) for b in bounds}
    buckets["+Inf"] = float(len(values))
    return HistogramDelta(count=float(len(values)), sum=float(values.sum()), buckets=buckets)


def _server(
    rng: np.random.Generator, requests: int, clients: float, queue_ms: float
) -> ServerDeltas:
    # Batches of about `clients` requests (the batcher gathers what is in flight), padded up
    # to the next allowed batch size.
    sizes = []
    left = requests
    while left > 0:
        n = int(min(left, max(1, rng.poisson(max(clients * 0.8, 0.5)) or 1), 32))
        sizes.append(n)
        left -= n
    inputs = np.asarray(sizes, dtype=float)
    processed = np.asarray([next(a for a in ALLOWED_BATCH_SIZES if a >= n) for n in sizes], float)
    queue_us = rng.gamma(2.0, queue_ms * 500.0, size=len(sizes))
    request_us = rng.gamma(4.0, 1000.0, size=requests)
    return ServerDeltas(
        per_version=True,
        request_count_by_status={"OK": float(requests)},
        request_latency_us=_histogram(request_us, LATENCY_BOUNDS),
        runtime_latency_us=_histogram(request_us * 0.7, LATENCY_BOUNDS),
        input_batch_size=_histogram(inputs, BATCH_BOUNDS),
        processed_batch_size=_histogram(processed, BATCH_BOUNDS),
        padding_size=_histogram(processed - inputs, BATCH_BOUNDS),
        queuing_latency_us=_histogram(queue_us, LATENCY_BOUNDS),
    )


def _step(
    rng: np.random.Generator,
    model: str,
    v: Variant,
    mode: str,
    target: float,
    repeat: int,
    duration_s: float,
    jitter: float,
) -> Step:
    if mode == "closed":
        rps = min(target * 1000.0 / v.service_ms, v.capacity_rps)
    else:
        rps = min(target, v.capacity_rps)
    rps *= 1 + rng.normal(0, jitter)
    mean_ms = (
        (target * 1000.0 / rps)
        if mode == "closed"
        else v.service_ms / max(0.05, 1 - rps / v.capacity_rps)
    )
    requests = max(20, int(rps * duration_s))
    sigma = 0.35
    samples = rng.lognormal(math.log(mean_ms) - sigma**2 / 2, sigma, size=requests)
    hist = _hdr(samples)
    uncorrected = None
    hdr_uncorrected = None
    if mode == "open":
        late = samples * rng.uniform(0.55, 0.9, size=requests)  # from the actual send: shorter
        hu = _hdr(late)
        uncorrected = LatencySummary(**_summary(hu, late))
        hdr_uncorrected = hu.encode().decode()
    windows = []
    n_windows = 5
    for w in range(n_windows):
        w_rps = rps * (1 + rng.normal(0, jitter))
        chunk = samples[w * requests // n_windows : (w + 1) * requests // n_windows]
        windows.append(
            Window(
                start_s=w * duration_s / n_windows,
                duration_s=duration_s / n_windows,
                requests=len(chunk),
                rps=w_rps,
                p99_ms=float(np.percentile(chunk, 99)),
            )
        )
    spread = max(w.rps for w in windows) / min(w.rps for w in windows)
    client_bound = ClientBound()
    if mode == "open" and target > 0.95 * v.capacity_rps:
        client_bound = ClientBound(
            flag=True, reasons=[f"achieved {rps / target:.0%} of target rate"]
        )
    return Step(
        model=model,
        version=v.version,
        label=v.variant,
        mode=mode,  # type: ignore[arg-type]
        target=target,
        arrival="poisson" if mode == "open" else None,
        repeat=repeat,
        duration_s=duration_s,
        requests=requests,
        achieved_rps=rps,
        latency_ms=StepLatency(**_summary(hist, samples), uncorrected=uncorrected),
        stable=spread < 1.2,
        windows=windows,
        client_bound=client_bound,
        late_share=0.002 if mode == "open" else None,
        dispatch_lag_ms=LatencySummary(count=requests, p50=0.05, p99=0.4)
        if mode == "open"
        else None,
        generator_cpu=0.25 + 0.02 * target if mode == "closed" else 0.3,
        early_stopping=EarlyStopping(min_queries=300, reached=requests >= 300),
        server=_server(rng, requests, target if mode == "closed" else 2.0, 0.3 + 0.1 * target),
        hdr=hist.encode().decode(),
        hdr_uncorrected=hdr_uncorrected,
    )


CLASSIFIER = "mobilenet_v2"
DETECTOR = "ssd_mobilenet_v2_tiny"

CLASSIFIER_VARIANTS = (
    Variant(1, "original", 14_020_000, 9.0, 210.0, None),
    Variant(
        2, "weight_quant", 3_790_000, 8.6, 236.0,
        Agreement(reference_version=1, inputs=64, max_abs_error=1.2e-3, max_rel_error=4e-3, top1=1.0),
    ),
    Variant(
        3, "fp16_weights", 7_030_000, 7.5, 290.0,
        Agreement(reference_version=1, inputs=64, max_abs_error=0.031, max_rel_error=0.09, top1=0.97),
    ),
)  # fmt: skip
DETECTOR_VARIANTS = (
    Variant(1, "original", 2_310_000, 6.0, 260.0, None),
    Variant(
        2, "weight_quant", 640_000, 6.1, 255.0,
        Agreement(reference_version=1, inputs=24, max_abs_error=4e-3, detection_match=0.996, score_drift=0.004),
    ),
)  # fmt: skip

CLOSED_TARGETS = (1.0, 2.0, 4.0, 8.0, 16.0)
OPEN_RATES = (60.0, 120.0)
SLO_MS = 40.0


@functools.cache
def _cached_results(**kwargs: object) -> Results:
    return _build_results(**kwargs)  # type: ignore[arg-type]


def build_results(**kwargs: object) -> Results:
    """The realistic run (see :func:`_build_results`), built once per argument set; each
    caller gets its own copy to change."""
    return _cached_results(**kwargs).model_copy(deep=True)


def _build_results(
    *,
    seed: int = 0,
    repeats: int = 1,
    slo_ms: float | None = SLO_MS,
    complete: bool = True,
    hostname: str = "ci-runner",
    gpu: str | None = None,
    jitter: float = 0.03,
) -> Results:
    """The realistic run: both example models, closed sweep + open rates, SLO result."""
    rng = np.random.default_rng(seed)
    steps: list[Step] = []
    versions: list[VersionInfo] = []
    slo: list[SloResult] = []
    for model, variants in ((CLASSIFIER, CLASSIFIER_VARIANTS), (DETECTOR, DETECTOR_VARIANTS)):
        for v in variants:
            versions.append(
                VersionInfo(
                    model=model, version=v.version, label=v.variant, variant=v.variant,
                    size_bytes=v.size_bytes, load_seconds=0.8 + v.size_bytes / 2e7,
                    first_request_ms=40.0 + v.service_ms, rss_delta_bytes=v.size_bytes * 3,
                    agreement=v.agreement,
                )
            )  # fmt: skip
            mine = []
            for target in CLOSED_TARGETS:
                for r in range(repeats):
                    # One classifier step is noisy: the honesty marks have something to show.
                    noisy = model == CLASSIFIER and v.version == 1 and target == 2.0 and r == 0
                    mine.append(
                        _step(rng, model, v, "closed", target, r, 3.0, 0.2 if noisy else jitter)
                    )
            for rate in OPEN_RATES:
                mine.append(
                    _step(
                        rng,
                        model,
                        v,
                        "open",
                        rate * (v.capacity_rps / 210.0 if rate > 100 else 1),
                        0,
                        3.0,
                        jitter,
                    )
                )
            steps += mine
            if slo_ms is not None:
                closed = [
                    s for s in mine if s.mode == "closed" and s.stable and not s.client_bound.flag
                ]
                by_target: dict[float, list[Step]] = {}
                for s in closed:
                    by_target.setdefault(s.target, []).append(s)
                under = [
                    (
                        t,
                        float(np.mean([s.achieved_rps for s in ss])),
                        float(np.mean([s.latency_ms.p99 or 0 for s in ss])),
                    )
                    for t, ss in sorted(by_target.items())
                    if all((s.latency_ms.p99 or 0) <= slo_ms for s in ss)
                ]
                best = max(under, key=lambda u: u[1], default=None)
                slo.append(
                    SloResult(
                        model=model, version=v.version, mode="closed",
                        max_target=best[0] if best else None,
                        max_rps_under_slo=best[1] if best else None,
                        p99_ms_at_max=best[2] if best else None,
                        probes=[{"target": t, "achieved_rps": a, "p99_ms": p} for t, a, p in under],
                    )
                )  # fmt: skip
    run = RunInfo(
        tool="compare",
        command="tfsuite compare --model mobilenet_v2 --concurrency 1,2,4,8,16 --rate 60,120 "
        f"--slo-p99-ms {slo_ms} --repeats {repeats}",
        started="2026-12-01T11:02:03Z",
        ended="2026-12-01T11:09:41Z" if complete else None,
        git_sha="17273f6a1b2c3d4e5f60718293a4b5c6d7e8f901",
        tfsuite_version="0.1.0",
        machine=Machine(
            hostname=hostname,
            platform="Linux-6.1.0-x86_64-with-glibc2.36",
            python="3.11.2",
            cores=2,
            memory_bytes=8 * 2**30,
            gpu=gpu,
        ),
        server=ServerInfo(
            address="127.0.0.1:40123",
            kind="embedded",
            rest_address="127.0.0.1:40124",
            metrics_url="http://127.0.0.1:40124/monitoring/prometheus/metrics",
            batching=True,
        ),
        model=f"{CLASSIFIER},{DETECTOR}",
        complete=complete,
        incomplete_reason=""
        if complete
        else "interrupted (Ctrl-C) during mobilenet_v2 v3 open loop",
        slo_p99_ms=slo_ms,
        settings={"duration_s": 3.0, "window_s": 0.6, "repeats": repeats, "batch_size": 1},
    )
    return Results(run=run, versions=versions, steps=steps, slo=slo)
