"""The load generator measured against references, as ratios within one run.

1. **Headroom.** Against a trivial model (y = 0.5x + 2 over 8 floats) on the embedded server
   (its own process, no batching), the engine's closed loop sustains >= 0.9x the requests/s
   of a bare ``grpc.aio`` loop sending the same pre-encoded request at the same
   concurrency. The two alternate (bare, engine, bare, engine, ...) so a busy machine skews
   them alike; the median ratio is reported.
2. **Fidelity.** Against the latency-scripted PredictionService
   (:mod:`tfsuite.loadtest.scripted_server`, its own process): every request sleeps
   U(100, 200) ms from a seeded schedule, and every 2000th request freezes the server for
   1 s (stop-the-world).

   * closed loop (8 in flight, 40 s: one stall): reported p50/p99 within 2% of the
     schedule's true p50/p99; the stall holds only the 8 requests in flight (0.4%), so p99
     does not show it;
   * open loop (50 req/s, at most 20 outstanding, one stall in the 60 s measured): the *scheduled-time model* (a replay of
     the fixed schedule through the server's rules: each request takes its scheduled
     service time, a stall freezes everything in flight, a send waits for a free slot)
     predicts that p99 measured from the scheduled send shows the stall; the engine's
     corrected p99 matches that prediction, while the uncorrected p99 (from the actual
     send) and the closed-loop p99 hide it.

``python benchmarks/loadgen.py [--quick]`` prints one table. The machine this runs on may be
shared; the ratios compare runs made side by side in one process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import grpc.aio
import numpy as np
import psutil
from rich.console import Console
from rich.table import Table

import tfsuite.protos  # noqa: F401

# isort: split
from tensorflow_serving.apis import predict_pb2

from tfsuite.clients.grpc_client import AsyncTFServingClient, TFServingClient
from tfsuite.loadtest.online.embedded import EmbeddedServer
from tfsuite.loadtest.online.load import arrival_times
from tfsuite.loadtest.online.profiler import StepPlan, StepSettings, measure_step
from tfsuite.loadtest.request_pool import RequestPool
from tfsuite.loadtest.results import Step
from tfsuite.loadtest.scripted_server import LatencySchedule, spawn
from tfsuite.loadtest.stats import percentiles

PREDICT = "/tensorflow.serving.PredictionService/Predict"
TRIVIAL_MODEL = """
import sys, tensorflow as tf
class HalfPlusTwo(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
    def predict(self, x):
        return {"y": 0.5 * x + 2.0}
m = HalfPlusTwo()
tf.saved_model.save(m, sys.argv[1], signatures={"serving_default": m.predict})
"""

#: Raise the reference server's and this generator's priority where allowed (root): on a
#: shared machine a starved reference server does not keep its own schedule.
PRIORITY = -10

SCHEDULE = {"seed": 7, "base_s": 0.100, "jitter_s": 0.100, "stall_every": 2000, "stall_s": 1.0}


def _schedule_args() -> list[str]:
    return [
        "--seed", str(SCHEDULE["seed"]),
        "--base-ms", str(SCHEDULE["base_s"] * 1e3),
        "--jitter-ms", str(SCHEDULE["jitter_s"] * 1e3),
        "--stall-every", str(SCHEDULE["stall_every"]),
        "--stall-s", str(SCHEDULE["stall_s"]),
    ]  # fmt: skip


# -- 1. headroom ------------------------------------------------------------------------------
async def _bare_loop(address: str, request: bytes, concurrency: int, seconds: float) -> float:
    """The reference: grpc.aio, the same bytes, the same concurrency; requests/s."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(
            PREDICT,
            request_serializer=None,  # bytes as they are
            response_deserializer=predict_pb2.PredictResponse.FromString,
            _registered_method=True,
        )
        await call(request)
        done = 0
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                await call(request)
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - start)


async def _engine_loop(address: str, pool: RequestPool, concurrency: int, seconds: float) -> Step:
    settings = StepSettings(
        duration_s=seconds, max_duration_s=seconds, warmup_s=0.5, window_s=seconds / 3
    )
    plan = StepPlan(pool.model, 1, None, "closed", concurrency)
    async with AsyncTFServingClient(address) as client:
        return (await measure_step(client, pool.cycle(1), plan, settings)).step


def headroom(rounds: int, seconds: float, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="loadgen-") as tmp:
        base = Path(tmp) / "trivial"
        subprocess.run(
            [sys.executable, "-c", TRIVIAL_MODEL, str(base / "1")],
            check=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            capture_output=True,
        )
        with EmbeddedServer(base, "trivial") as server:
            with TFServingClient(server.grpc_address) as client:
                client.wait_ready(30)
                pool = RequestPool.from_metadata(client.metadata("trivial", version=1), 1)
            request = pool.rpcs(1)[0].request
            process = psutil.Process()
            bare, engine, ratios, bare_cpu, engine_cpu = [], [], [], [], []
            for _ in range(rounds):
                cpu0, t0 = sum(process.cpu_times()[:2]), time.perf_counter()
                b = asyncio.run(_bare_loop(server.grpc_address, request, concurrency, seconds))
                bare_cpu.append((sum(process.cpu_times()[:2]) - cpu0) / (time.perf_counter() - t0))
                step = asyncio.run(_engine_loop(server.grpc_address, pool, concurrency, seconds))
                bare.append(b)
                engine.append(step.achieved_rps)
                ratios.append(step.achieved_rps / b)
                engine_cpu.append(step.generator_cpu or 0.0)
    return {
        "bare_rps": statistics.median(bare),
        "engine_rps": statistics.median(engine),
        "ratio": statistics.median(ratios),
        "bare_cpu": statistics.median(bare_cpu),
        "engine_cpu": statistics.median(engine_cpu),
    }


# -- 2. fidelity ------------------------------------------------------------------------------
def scheduled_time_model(
    offsets: np.ndarray, schedule: LatencySchedule, cap: int, window: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Replay the fixed send schedule through the scripted server's rules.

    Request i is due at offsets[i]; it is sent then, or when one of ``cap`` slots frees;
    the server sleeps its scheduled service time, and a stall request freezes the server for
    ``stall_s`` from its arrival: anything still in service then finishes no earlier than
    the end of the freeze. Returns (latency from the scheduled send, latency from the actual
    send) of the requests due inside ``window`` (seconds), network time ignored.
    """
    inflight: list[list[float]] = []  # [finish, service end (sleep over)] per request
    corrected, uncorrected = [], []
    pause_start, pause_end = -1.0, -1.0
    records: dict[int, tuple[float, float]] = {}  # index -> (due, sent)
    finishes: dict[int, list[float]] = {}
    last_sent = 0.0
    for i, due in enumerate(offsets.tolist()):
        sent = max(due, last_sent)  # one dispatcher: sends go out in schedule order
        inflight.sort()
        while inflight and inflight[0][0] <= sent:
            inflight.pop(0)
        if len(inflight) >= cap:  # wait for the first slot to free
            sent = inflight.pop(0)[0]
            while inflight and inflight[0][0] <= sent:
                inflight.pop(0)
        last_sent = sent
        if schedule.stalls(i):
            pause_start, pause_end = sent, sent + schedule.stall_s
            for entry in inflight:  # still sleeping when the freeze starts: held until its end
                if entry[1] >= pause_start:
                    entry[0] = max(entry[0], pause_end)
        service_end = sent + schedule.delay(i)
        finish = max(service_end, pause_end) if service_end >= pause_start else service_end
        entry = [finish, service_end]
        inflight.append(entry)
        records[i] = (due, sent)
        finishes[i] = entry
    for i, (due, sent) in records.items():
        if window[0] <= due < window[1]:
            corrected.append(finishes[i][0] - due)
            uncorrected.append(finishes[i][0] - sent)
    return np.asarray(corrected), np.asarray(uncorrected)


async def _scripted_step(address: str, plan: StepPlan, settings: StepSettings) -> Step:
    with TFServingClient(address) as client:
        pool = RequestPool.from_metadata(client.metadata("scripted", version=1), 1)
    async with AsyncTFServingClient(address) as client:
        return (await measure_step(client, pool.cycle(1), plan, settings)).step


def fidelity(closed_s: float, open_s: float) -> dict[str, float]:
    schedule = LatencySchedule(**SCHEDULE)  # type: ignore[arg-type]
    true_p50, true_p99 = (1e3 * v for v in percentiles(schedule.delays(200_000), (50, 99)))
    closed_settings = StepSettings(
        duration_s=closed_s, max_duration_s=closed_s, warmup_s=2.0, window_s=closed_s / 4
    )
    with spawn(_schedule_args(), nice=PRIORITY) as (_, address):
        closed = asyncio.run(
            _scripted_step(address, StepPlan("scripted", 1, None, "closed", 8), closed_settings)
        )
    rate, cap, warmup = 50.0, 20, 2.0
    open_settings = StepSettings(
        duration_s=open_s, max_duration_s=open_s, warmup_s=warmup, window_s=open_s / 6,
        max_inflight=cap,
    )  # fmt: skip
    with spawn(_schedule_args(), nice=PRIORITY) as (
        _,
        address,
    ):  # a fresh server: the schedule from index 0
        opened = asyncio.run(
            _scripted_step(address, StepPlan("scripted", 1, None, "open", rate), open_settings)
        )
    offsets = arrival_times(rate, warmup + open_s + 5.0)
    model_c, model_u = scheduled_time_model(offsets, schedule, cap, (warmup, warmup + open_s))
    model_c99, model_u99 = (1e3 * percentiles(a, [99])[0] for a in (model_c, model_u))
    assert opened.latency_ms.uncorrected is not None
    return {
        "true_p50": true_p50,
        "true_p99": true_p99,
        "closed_p50": closed.latency_ms.p50 or float("nan"),
        "closed_p99": closed.latency_ms.p99 or float("nan"),
        "closed_requests": closed.requests,
        "open_p99": opened.latency_ms.p99 or float("nan"),
        "open_unc_p99": opened.latency_ms.uncorrected.p99 or float("nan"),
        "model_p99": model_c99,
        "model_unc_p99": model_u99,
        "open_requests": opened.requests,
        "open_late": opened.late_share or 0.0,
        "open_client_bound": float(opened.client_bound.flag),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (noisier)")
    args = parser.parse_args()
    rounds, seconds = (2, 3.0) if args.quick else (3, 6.0)
    closed_s, open_s = (12.0, 60.0) if args.quick else (40.0, 60.0)
    console = Console()
    try:
        os.nice(PRIORITY)
    except OSError:
        console.print("(running at normal priority: raising it is not permitted here)")
    start_load = os.getloadavg()
    console.print("headroom: bare grpc.aio loop vs the engine, trivial model ...")
    h = headroom(rounds, seconds, concurrency=16)
    console.print("fidelity: latency-scripted server, closed then open loop ...")
    f = fidelity(closed_s, open_s)

    def verdict(ok: bool) -> str:
        return "[green]ok[/green]" if ok else "[red]MISSED[/red]"

    load = os.getloadavg()
    table = Table(
        title="load generator (benchmarks/loadgen.py)",
        caption=f"machine: {os.cpu_count()} cores, load average {start_load[0]:.1f} at the "
        f"start, {load[0]:.1f} at the end (other work on it skews every latency row)",
        title_justify="left",
    )
    for name in ("measure", "value", "reference", "ratio / error", "target", ""):
        table.add_column(name, justify="left" if name == "measure" else "right")
    table.add_row(
        "headroom: engine req/s, closed c=16",
        f"{h['engine_rps']:.0f}",
        f"{h['bare_rps']:.0f} (bare grpc.aio)",
        f"{h['ratio']:.2f}x",
        ">= 0.90x",
        verdict(h["ratio"] >= 0.9),
    )
    table.add_row(
        "  generator CPU, share of a core",
        f"{h['engine_cpu']:.0%}",
        f"{h['bare_cpu']:.0%} (bare)",
        "",
        "",
        "",
    )
    e50 = f["closed_p50"] / f["true_p50"] - 1
    e99 = f["closed_p99"] / f["true_p99"] - 1
    table.add_row(
        f"closed c=8 p50 ms ({f['closed_requests']:.0f} req)",
        f"{f['closed_p50']:.1f}",
        f"{f['true_p50']:.1f} (schedule)",
        f"{e50:+.1%}",
        "within 2%",
        verdict(abs(e50) <= 0.02),
    )
    table.add_row(
        "closed c=8 p99 ms",
        f"{f['closed_p99']:.1f}",
        f"{f['true_p99']:.1f} (schedule)",
        f"{e99:+.1%}",
        "within 2%",
        verdict(abs(e99) <= 0.02),
    )
    stall_ms = SCHEDULE["stall_s"] * 1e3
    table.add_row(
        "closed c=8 p99 hides the 1 s stall",
        f"{f['closed_p99']:.1f}",
        f"{stall_ms:.0f} (stall)",
        "",
        "p99 < stall / 2",
        verdict(f["closed_p99"] < stall_ms / 2),
    )
    ec = f["open_p99"] / f["model_p99"] - 1
    table.add_row(
        f"open 50/s p99 ms, from schedule ({f['open_requests']:.0f} req)",
        f"{f['open_p99']:.1f}",
        f"{f['model_p99']:.1f} (model)",
        f"{ec:+.1%}",
        "shows it; model +-15%",
        verdict(f["open_p99"] > stall_ms / 2 and abs(ec) <= 0.15),
    )
    eu = f["open_unc_p99"] / f["model_unc_p99"] - 1
    table.add_row(
        "open 50/s p99 ms, uncorrected (from send)",
        f"{f['open_unc_p99']:.1f}",
        f"{f['model_unc_p99']:.1f} (model)",
        f"{eu:+.1%}",
        "hides: p99 < stall / 2",
        verdict(f["open_unc_p99"] < stall_ms / 2),
    )
    table.add_row(
        "  open loop: late > 1 ms, client-bound flag",
        f"{f['open_late']:.1%}",
        "",
        "",
        "",
        "flagged" if f["open_client_bound"] else "not flagged",
    )
    console.print(table)


if __name__ == "__main__":
    main()
