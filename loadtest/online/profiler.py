"""One load step, measured: warm-up, fixed windows, stability, client-bound check, server view.

perf_analyzer's ``InferenceProfiler`` is the model: the step runs in fixed measurement
windows after an unmeasured warm-up; it ends once it has run ``duration_s`` and its last 3
windows agree within ``stability`` (share, e.g. 0.10) on throughput and on p99 (then
``stable``), or at ``max_duration_s`` (then not stable). The reported figures merge the
last ``ceil(duration_s / window_s)`` windows (at least 3). The server's Prometheus endpoint is
scraped at every window boundary; the step's ``server`` deltas span the reported windows.

A window with errors and no answer at all ends the step at once (``failed``): a server
that died mid-run is not measured for another two minutes.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import psutil

from tfsuite.clients.grpc_client import AsyncTFServingClient
from tfsuite.loadtest.online.load import (
    DEFAULT_MAX_INFLIGHT,
    ConcurrencyManager,
    LoadManager,
    RequestRateManager,
    arrival_times,
)
from tfsuite.loadtest.online.recorder import VERSION_MISMATCH, StepRecorder, WindowCounts
from tfsuite.loadtest.results import (
    ClientBound,
    EarlyStopping,
    Step,
    StepLatency,
    Window,
)
from tfsuite.loadtest.server_metrics import MetricsScraper, Snapshot, server_deltas
from tfsuite.loadtest.stats import LatencyHistogram, early_stopping_min_queries

__all__ = [
    "CLIENT_BOUND_CPU",
    "CLIENT_BOUND_LATE",
    "CLIENT_BOUND_RATE",
    "StepOutcome",
    "StepPlan",
    "StepSettings",
    "measure_step",
]

#: Client-bound when the generator uses more than this share of one core,
CLIENT_BOUND_CPU = 0.80
#: or (open loop) achieves less than this share of the target rate,
CLIENT_BOUND_RATE = 0.95
#: or (open loop) sends more than this share of requests > 1 ms late.
CLIENT_BOUND_LATE = 0.01


@dataclass(frozen=True)
class StepSettings:
    """How every step is measured (``tfsuite compare``'s options)."""

    duration_s: float = 30.0
    max_duration_s: float = 120.0
    warmup_s: float = 2.0
    window_s: float = 5.0
    stability: float = 0.10
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    timeout_s: float = 30.0
    early_stopping: bool = True
    seed: int = 0

    def windows(self) -> tuple[float, int]:
        """(window seconds, windows reported): at least 3 windows fit in ``duration_s``."""
        window = min(self.window_s, self.duration_s / 3.0)
        return window, max(3, math.ceil(self.duration_s / window - 1e-9))


@dataclass(frozen=True)
class StepPlan:
    """What one step loads: one version at one target."""

    model: str
    version: int
    label: str | None
    mode: Literal["closed", "open"]
    target: float
    poisson: bool = False
    repeat: int = 0
    batch_size: int = 1
    address_by_label: bool = False
    """Send the label in the requests' model_spec instead of the number."""


@dataclass
class StepOutcome:
    """The step as ``results.json`` records it, and whether the run can go on."""

    step: Step
    failed: bool = False
    reason: str = ""
    windows: list[WindowCounts] = field(default_factory=list, repr=False)


def _stable(windows: list[WindowCounts], stability: float) -> bool:
    if len(windows) < 3:
        return False
    last = windows[-3:]
    for values in ([w.rps for w in last], [w.p99_ms for w in last]):
        if any(v is None for v in values):
            return False
        mean = sum(values) / 3.0  # type: ignore[arg-type]
        if mean <= 0 or any(abs(v - mean) > stability * mean for v in values):  # type: ignore[operator]
            return False
    return True


def _failed(window: WindowCounts) -> bool:
    return window.ok == 0 and bool(window.errors)


async def _snapshot(scraper: MetricsScraper | None) -> Snapshot | None:
    if scraper is None or scraper.url is None or scraper.reachable is False:
        return None
    return await asyncio.to_thread(scraper.snapshot)


def _manager(
    client: AsyncTFServingClient, requests: Any, plan: StepPlan, settings: StepSettings
) -> LoadManager:
    if plan.mode == "closed":
        return ConcurrencyManager(client, requests, int(plan.target), settings.timeout_s)
    horizon = settings.warmup_s + settings.max_duration_s + 1.0
    offsets = arrival_times(
        plan.target, horizon, poisson=plan.poisson, seed=settings.seed + plan.repeat
    )
    return RequestRateManager(client, requests, offsets, settings.max_inflight, settings.timeout_s)


async def measure_step(
    client: AsyncTFServingClient,
    requests: Any,
    plan: StepPlan,
    settings: StepSettings,
    scraper: MetricsScraper | None = None,
    on_window: Any = None,
) -> StepOutcome:
    """Run and measure one step; ``requests`` is an endless iterator of pooled RPCs."""
    recorder = StepRecorder(plan.version)
    client.call_hooks.append(recorder)
    manager = _manager(client, requests, plan, settings)
    process = psutil.Process()
    window_s, reported = settings.windows()
    windows: list[WindowCounts] = []
    snapshots: list[Snapshot | None] = []
    stable = failed = False
    try:
        manager.start()
        await asyncio.sleep(settings.warmup_s)
        start = time.perf_counter()
        cpu_start = sum(process.cpu_times()[:2])
        recorder.start(start)
        snapshots.append(await _snapshot(scraper))
        while True:
            boundary = start + (len(windows) + 1) * window_s
            await asyncio.sleep(max(0.0, boundary - time.perf_counter()))
            windows.append(recorder.roll(time.perf_counter()))
            snapshots.append(await _snapshot(scraper))
            if on_window is not None:
                on_window(windows[-1], len(windows))
            elapsed = len(windows) * window_s
            if _failed(windows[-1]):
                failed = True
                break
            if elapsed >= settings.duration_s - 1e-9 and _stable(windows, settings.stability):
                stable = True
                break
            if elapsed >= settings.max_duration_s - 1e-9:
                break
        cpu_used = sum(process.cpu_times()[:2]) - cpu_start
        wall = time.perf_counter() - start
    finally:
        recorder.stop()
        await manager.stop()
        client.call_hooks.remove(recorder)
    used = windows[-reported:]
    before = snapshots[len(windows) - len(used)]
    step = _step(plan, used, windows, stable, settings)
    step.generator_cpu = cpu_used / wall if wall > 0 else None
    step.server = server_deltas(before, snapshots[-1], plan.model, plan.version)
    step.client_bound = _client_bound(step, plan)
    reason = ""
    if failed:
        codes = ", ".join(f"{c} x{n}" for c, n in sorted(windows[-1].errors.items()))
        reason = f"v{plan.version} {plan.mode} {plan.target:g}: every request failed ({codes})"
        if recorder.first_error:
            reason += f": {recorder.first_error}"
    return StepOutcome(step, failed, reason, windows)


def _step(
    plan: StepPlan,
    used: list[WindowCounts],
    all_windows: list[WindowCounts],
    stable: bool,
    settings: StepSettings,
) -> Step:
    latency = LatencyHistogram.merged(w.latency for w in used)
    duration = sum(w.duration for w in used)
    errors: Counter[str] = Counter()
    for w in used:
        errors.update(w.errors)
    ok = sum(w.ok for w in used)
    summary = latency.summary()
    step_latency = StepLatency(**summary.model_dump())
    open_loop = plan.mode == "open"
    uncorrected = lag = None
    late_share = None
    if open_loop:
        uncorrected = LatencyHistogram.merged(w.uncorrected for w in used)
        step_latency.uncorrected = uncorrected.summary()
        lag = LatencyHistogram.merged(w.dispatch_lag for w in used)
        sent = sum(w.sent_scheduled for w in used)
        late_share = sum(w.late for w in used) / sent if sent else None
    first = all_windows[0].start if all_windows else 0.0
    step = Step(
        model=plan.model,
        version=plan.version,
        label=plan.label,
        mode=plan.mode,
        target=plan.target,
        arrival=("poisson" if plan.poisson else "constant") if open_loop else None,
        repeat=plan.repeat,
        batch_size=plan.batch_size,
        duration_s=duration,
        requests=ok + sum(errors.values()),
        achieved_rps=ok / duration if duration > 0 else 0.0,
        latency_ms=step_latency,
        errors_by_code=dict(errors),
        version_mismatches=errors[VERSION_MISMATCH],
        stable=stable,
        windows=[
            Window(
                start_s=w.start - first,
                duration_s=w.duration,
                requests=w.completed,
                rps=w.rps,
                p99_ms=w.p99_ms,
            )
            for w in all_windows
        ],
        late_share=late_share,
        dispatch_lag_ms=lag.summary() if lag is not None else None,
        hdr=latency.encode() if latency.count else None,
        hdr_uncorrected=uncorrected.encode()
        if uncorrected is not None and uncorrected.count
        else None,
    )
    if settings.early_stopping:
        need = early_stopping_min_queries(99.0)
        step.early_stopping = EarlyStopping(percentile=99.0, min_queries=need, reached=ok >= need)
    return step


def _client_bound(step: Step, plan: StepPlan) -> ClientBound:
    reasons: list[str] = []
    if step.generator_cpu is not None and step.generator_cpu > CLIENT_BOUND_CPU:
        reasons.append(f"generator CPU {step.generator_cpu:.0%} of a core")
    if plan.mode == "open":
        share = step.achieved_rps / plan.target if plan.target else 1.0
        if share < CLIENT_BOUND_RATE:
            reasons.append(f"achieved {share:.0%} of the target rate")
        if step.late_share is not None and step.late_share > CLIENT_BOUND_LATE:
            reasons.append(f"{step.late_share:.1%} of requests sent > 1 ms late")
    return ClientBound(flag=bool(reasons), reasons=reasons)
