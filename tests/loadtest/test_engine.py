"""The online engine against a latency-scripted TF Serving PredictionService (real protos,
real gRPC on port 0): figures, per-version truth, stability, client-bound detection."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfsuite.clients.grpc_client import AsyncTFServingClient, TFServingClient
from tfsuite.loadtest.online.load import arrival_times
from tfsuite.loadtest.online.profiler import StepPlan, StepSettings, measure_step
from tfsuite.loadtest.online.recorder import VERSION_MISMATCH
from tfsuite.loadtest.request_pool import RequestPool
from tfsuite.loadtest.results import Step
from tfsuite.loadtest.scripted_server import LatencySchedule, ScriptedServer, serve_in_thread, spawn

QUICK = StepSettings(duration_s=1.5, max_duration_s=3.0, warmup_s=0.3, window_s=0.5)


def _pool(address: str, model: str = "scripted") -> RequestPool:
    with TFServingClient(address) as client:
        return RequestPool.from_metadata(client.metadata(model, version=1), batch_size=2)


def _step(address: str, plan: StepPlan, settings: StepSettings = QUICK) -> Step:
    pool = _pool(address, plan.model)

    async def run() -> Step:
        async with AsyncTFServingClient(address) as client:
            requests = pool.cycle(
                *((None, plan.label) if plan.address_by_label else (plan.version, None))
            )
            return (await measure_step(client, requests, plan, settings)).step

    return asyncio.run(run())


def test_arrival_schedule_is_fixed_in_advance_constant_or_seeded_poisson() -> None:
    constant = arrival_times(100, 2.0)
    assert np.allclose(np.diff(constant), 0.01)
    a, b = (
        arrival_times(100, 60.0, poisson=True, seed=4),
        arrival_times(100, 60.0, poisson=True, seed=4),
    )
    assert np.array_equal(a, b)
    gaps = np.diff(a)
    assert gaps.mean() == pytest.approx(0.01, rel=0.05)  # exponential gaps, mean 1/rate
    assert gaps.std() == pytest.approx(0.01, rel=0.1)


def test_closed_loop_step_records_hdr_windows_and_the_schedules_latency() -> None:
    with spawn(["--base-ms", "10"]) as (_, address):
        step = _step(address, StepPlan("scripted", 1, None, "closed", 4, batch_size=2))
    assert step.mode == "closed" and step.latency_ms.uncorrected is None
    assert step.requests > 50 and step.errors_by_code == {} and step.version_mismatches == 0
    # The server sleeps 10 ms per request: nothing is faster, and the median is near it
    # (the bound is loose: the machine running the tests may be busy).
    assert 10.0 <= step.latency_ms.p50 < 10.0 * 2.5  # type: ignore[operator]
    assert step.latency_ms.p50 <= step.latency_ms.p90 <= step.latency_ms.p99 <= step.latency_ms.p999  # type: ignore[operator]
    assert step.achieved_rps == pytest.approx(step.requests / step.duration_s, rel=1e-6)
    assert len(step.windows) >= 3 and step.hdr
    assert step.duration_s == pytest.approx(1.5, rel=0.02)  # the last 3 windows are reported
    assert step.early_stopping is not None and step.early_stopping.min_queries == 459
    assert step.generator_cpu is not None and step.generator_cpu >= 0


def test_replies_from_another_version_are_counted_as_mismatches() -> None:
    schedule = LatencySchedule(base_s=0.001)
    with serve_in_thread(
        ScriptedServer(schedule, versions={1: None, 2: None}, reply_version=2)
    ) as s:
        step = _step(s.address, StepPlan("scripted", 1, None, "closed", 2))
    assert step.version_mismatches > 0
    assert step.errors_by_code[VERSION_MISMATCH] == step.version_mismatches
    assert step.achieved_rps == 0.0  # no reply came from the version asked for


def test_versions_addressed_by_label_are_checked_against_the_number() -> None:
    schedule = LatencySchedule(base_s=0.001)
    server = ScriptedServer(schedule, versions={1: "original", 2: "weight_quant"})
    with serve_in_thread(server) as s:
        plan = StepPlan("scripted", 2, "weight_quant", "closed", 2, address_by_label=True)
        step = _step(s.address, plan)
    assert step.version_mismatches == 0 and step.requests > 0 and step.label == "weight_quant"


def test_open_loop_reports_corrected_uncorrected_lag_and_late_share() -> None:
    schedule = LatencySchedule(seed=1, base_s=0.005, jitter_s=0.005)
    with spawn(["--base-ms", "5", "--jitter-ms", "5"]) as (_, address):
        step = _step(address, StepPlan("scripted", 1, None, "open", 100))
    assert step.arrival == "constant" and step.latency_ms.uncorrected is not None
    assert step.dispatch_lag_ms is not None and step.dispatch_lag_ms.count == step.requests
    assert step.late_share is not None and 0.0 <= step.late_share <= 1.0
    # from the schedule, a request can only look slower than from its actual send
    assert step.latency_ms.p50 >= step.latency_ms.uncorrected.p50  # type: ignore[operator]
    assert step.achieved_rps == pytest.approx(100, rel=0.15)
    assert schedule.delays(10).min() >= 0.005


def test_a_rate_the_generator_cannot_reach_is_reported_client_bound() -> None:
    with spawn(["--base-ms", "0"]) as (_, address):
        step = _step(address, StepPlan("scripted", 1, None, "open", 50_000))
    assert step.client_bound.flag
    assert any("of the target rate" in r for r in step.client_bound.reasons)
    assert step.achieved_rps < 0.95 * 50_000  # reported as achieved, not as the target


def test_a_step_that_never_settles_ends_at_max_duration_unstable() -> None:
    # ~0.2 s of 2 ms requests, then a 1 s freeze, over and over: some 0.5 s windows are all
    # freeze (no answer at all), others full of answers: never 3 alike
    with spawn(["--base-ms", "2", "--stall-every", "100", "--stall-s", "1"]) as (_, address):
        settings = StepSettings(duration_s=1.5, max_duration_s=2.5, warmup_s=0.2, window_s=0.5)
        step = _step(address, StepPlan("scripted", 1, None, "closed", 1), settings)
    assert not step.stable
    assert len(step.windows) == 5  # 2.5 s of 0.5 s windows, then it gave up


def test_engine_modules_do_not_import_tensorflow() -> None:
    code = (
        "import sys; "
        "import tfsuite.loadtest.online.cli, tfsuite.loadtest.online.sweep, "
        "tfsuite.loadtest.online.profiler, tfsuite.loadtest.agreement, "
        "tfsuite.loadtest.request_pool, tfsuite.loadtest.server_metrics, "
        "tfsuite.loadtest.scripted_server, tfsuite.export.agreement; "
        "assert 'tensorflow.python' not in sys.modules and 'tensorflow' not in sys.modules, "
        "'tf imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_scripted_server_process_answers_metadata(tmp_path: Path) -> None:
    with spawn(["--versions", "1:original,3:fp16"]) as (_, address), TFServingClient(address) as c:
        assert [s.version for s in c.status("scripted")] == [1, 3]
        assert c.metadata("scripted", label="fp16").version == 3
