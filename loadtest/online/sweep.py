"""``tfsuite compare`` as a library call: every version x every load target, measured.

    from tfsuite.loadtest.online import CompareOptions, run_compare

    results = run_compare(CompareOptions(model="ssd", base_path=Path("models/ssd"),
                                         versions=[1, 2], concurrency=[1, 8], rates=[20, 40],
                                         out=Path("out")))

The run, in order (nothing is sent before the checks pass):

1. ``--out`` must be writable; with ``--base-path`` the embedded server is started in its own
   process (batching on with ``--batching-parameters``), with ``--server`` it must answer
   within the connect timeout;
2. the versions (by number or label) must exist on the server, or the run stops listing the
   ones that do;
3. per version: load cost (load time and RSS from the server's load log when it is ours, the
   first request's latency), then output agreement with the reference version on the pool's
   fixed inputs;
4. the steps: versions one after another (or ``interleave``: rounds in a seeded random
   order), each target, each repeat; ``results.json`` and ``results.csv`` are rewritten after
   every step (``complete: false`` until the end), so an interrupted run keeps what it
   finished; a step in which every request failed (a dead server) ends the run, the steps
   left are recorded as skipped;
5. with ``slo_p99_ms``: per version, a search for the highest load whose p99 stays under the
   SLO (binary search over rate in open loop, over concurrency in closed loop);
6. with ``repeats >= 2``: bootstrap confidence intervals of throughput, p50 and p99.
"""

from __future__ import annotations

import asyncio
import math
import random
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import grpc
import numpy as np
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from tfsuite.clients.errors import ServingClientError
from tfsuite.clients.grpc_client import AsyncTFServingClient, TFServingClient
from tfsuite.clients.hooks import CallEvent
from tfsuite.errors import UsageError
from tfsuite.export.manifest import VariantsManifest
from tfsuite.loadtest.agreement import guess_kind, served_agreement, served_outputs
from tfsuite.loadtest.online.embedded import EmbeddedServer
from tfsuite.loadtest.online.output import step_line, step_name, versions_summary, versions_table
from tfsuite.loadtest.online.output import write_outputs as _write_outputs
from tfsuite.loadtest.online.profiler import StepOutcome, StepPlan, StepSettings, measure_step
from tfsuite.loadtest.online.recorder import WindowCounts
from tfsuite.loadtest.request_pool import RequestPool
from tfsuite.loadtest.results import (
    ConfidenceInterval,
    Results,
    RunInfo,
    ServerInfo,
    SloResult,
    Step,
    StepLatency,
    VersionInfo,
)
from tfsuite.loadtest.run_info import git_sha, machine_info, now_iso, tfsuite_version
from tfsuite.loadtest.server_metrics import MetricsScraper, load_seconds
from tfsuite.loadtest.stats import bootstrap_ci

__all__ = ["CompareOptions", "check_out_dir", "resolve_versions", "run_compare"]

#: SLO search: at most this many probes per version beyond the sweep's own steps.
SLO_MAX_PROBES = 8


@dataclass
class CompareOptions:
    """Everything ``tfsuite compare`` takes (see its ``--help``)."""

    model: str
    out: Path
    server: str | None = None
    """gRPC HOST:PORT of a running server (TF Serving or ``tfsuite serve``)."""
    base_path: Path | None = None
    """Serve this model base path with the embedded server, in its own process."""
    batching_parameters: Path | None = None
    metrics_url: str | None = None
    """Prometheus endpoint of ``server`` (the embedded server's is known)."""
    versions: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    concurrency: list[int] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    poisson: bool = False
    batch_size: int = 1
    inputs: Path | None = None
    signature: str | None = None
    slo_p99_ms: float | None = None
    interleave: bool = False
    repeats: int = 1
    reference: str | None = None
    """Version number or label of the agreement reference (default: the first version)."""
    settings: StepSettings = field(default_factory=StepSettings)
    connect_timeout_s: float = 10.0
    command: str = ""
    seed: int = 0


def check_out_dir(out: Path) -> None:
    """``out`` exists (or can be made) and takes files; a one-line UsageError otherwise."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".tfsuite-write-check-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(
            f"--out {out}: not writable ({reason}); choose another directory"
        ) from None


def resolve_versions(
    client: TFServingClient,
    model: str,
    versions: list[int],
    labels: list[str],
    known_labels: dict[int, str],
) -> list[tuple[int, str | None]]:
    """The (version, label) pairs to measure; UsageError listing what exists otherwise."""
    try:
        statuses = client.status(model)
    except ServingClientError as exc:
        if exc.code == grpc.StatusCode.NOT_FOUND:
            raise UsageError(
                f"model {model!r} is not served at {client.address} ({exc.message})"
            ) from None
        raise
    available = sorted(s.version for s in statuses if s.state == "AVAILABLE")
    listing = (
        ", ".join(f"{v} ({known_labels[v]})" if v in known_labels else str(v) for v in available)
        or "none"
    )
    if versions:
        missing = [v for v in versions if v not in available]
        if missing:
            raise UsageError(
                f"version {', '.join(map(str, missing))} of {model} is not available on the "
                f"server; available versions: {listing}"
            )
        return [(v, known_labels.get(v)) for v in versions]
    if labels:
        pairs = []
        for label in labels:
            try:
                meta = client.metadata(model, label=label)
            except ServingClientError as exc:
                if exc.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
                    raise UsageError(
                        f"label {label!r} of {model} is not on the server; available "
                        f"versions: {listing}"
                    ) from None
                raise
            if meta.version is None:
                raise UsageError(f"the server did not say which version label {label!r} is")
            pairs.append((int(meta.version), label))
        return pairs
    if not available:
        raise UsageError(f"model {model} has no available version on the server")
    return [(v, known_labels.get(v)) for v in available]


@dataclass
class _Target:
    version: int
    label: str | None
    mode: Literal["closed", "open"]
    target: float
    repeat: int


def _plan(pairs: list[tuple[int, str | None]], options: CompareOptions) -> list[_Target]:
    loads: list[tuple[Literal["closed", "open"], float]] = [
        ("closed", float(c)) for c in options.concurrency
    ] + [("open", float(r)) for r in options.rates]
    if not options.interleave:
        return [
            _Target(v, label, mode, target, r)
            for v, label in pairs
            for mode, target in loads
            for r in range(options.repeats)
        ]
    rng = random.Random(options.seed)
    order: list[_Target] = []
    for r in range(options.repeats):
        units = [_Target(v, label, m, t, r) for v, label in pairs for m, t in loads]
        rng.shuffle(units)
        order += units
    return order


def _skipped(plan: StepPlan, why: str) -> Step:
    return Step(
        model=plan.model,
        version=plan.version,
        label=plan.label,
        mode=plan.mode,
        target=plan.target,
        arrival=("poisson" if plan.poisson else "constant") if plan.mode == "open" else None,
        repeat=plan.repeat,
        batch_size=plan.batch_size,
        duration_s=0.0,
        requests=0,
        achieved_rps=0.0,
        latency_ms=StepLatency(count=0),
        stable=False,
        skipped=why,
    )


class _Run:
    """One compare run's state: the results so far, written after every step."""

    def __init__(self, options: CompareOptions, console: Console) -> None:
        self.options = options
        self.console = console
        self.results: Results | None = None

    def write(self) -> None:
        if self.results is not None:
            _write_outputs(self.results, self.options.out)

    def finish(self, complete: bool, reason: str = "") -> None:
        if self.results is None:
            return
        self.results.run.ended = now_iso()
        self.results.run.complete = complete
        self.results.run.incomplete_reason = reason
        self.write()


def _first_request_ms(client: TFServingClient, rpc: Any) -> float | None:
    seen: list[CallEvent] = []
    client.call_hooks.append(seen.append)
    try:
        client.send(rpc)
    except ServingClientError:
        return None
    finally:
        client.call_hooks.remove(seen.append)
    return seen[0].seconds * 1e3 if seen else None


def _versions_info(
    client: TFServingClient,
    pool: RequestPool,
    pairs: list[tuple[int, str | None]],
    options: CompareOptions,
    manifest: VariantsManifest | None,
    server: EmbeddedServer | None,
    scraper: MetricsScraper,
) -> list[VersionInfo]:
    infos = []
    snapshot = scraper.snapshot()
    for version, label in pairs:
        record = manifest.by_version(version) if manifest else None
        load = server.loads.get(version) if server else None
        ask_label = label if options.labels else None
        rpc = pool.rpcs(None if ask_label else version, ask_label)[0]
        infos.append(
            VersionInfo(
                model=options.model,
                version=version,
                label=label,
                variant=record.variant if record else None,
                size_bytes=record.size_bytes if record else None,
                load_seconds=load.seconds
                if load and load.seconds is not None
                else load_seconds(snapshot, options.model, version),
                rss_delta_bytes=load.rss_delta if load else None,
                first_request_ms=_first_request_ms(client, rpc),
            )
        )
    # Agreement: the same fixed inputs through every version, against the reference.
    reference = _reference(pairs, options.reference)
    outputs = {v: served_outputs(client, pool, v) for v, _ in pairs}
    kind = manifest.kind if manifest else guess_kind(outputs[reference])
    for info in infos:
        if info.version != reference:
            info.agreement = served_agreement(
                outputs[reference], outputs[info.version], kind, reference
            )
    return infos


def _reference(pairs: list[tuple[int, str | None]], wanted: str | None) -> int:
    if wanted is None:
        return pairs[0][0]
    for version, label in pairs:
        if wanted in (str(version), label):
            return version
    names = ", ".join(f"{v}" + (f" ({label})" if label else "") for v, label in pairs)
    raise UsageError(f"--reference {wanted}: not one of the measured versions ({names})")


async def _measure(
    client: AsyncTFServingClient,
    pool: RequestPool,
    plan: StepPlan,
    options: CompareOptions,
    scraper: MetricsScraper | None,
    console: Console,
    settings: StepSettings | None = None,
) -> StepOutcome:
    settings = settings or options.settings
    requests = pool.cycle(*((None, plan.label) if plan.address_by_label else (plan.version, None)))
    name = step_name(_skipped(plan, ""))
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"{name}: warming up", total=None)

        def on_window(window: WindowCounts, index: int) -> None:
            p99 = window.p99_ms
            errors = sum(window.errors.values())
            bar.update(
                task,
                description=f"{name}: window {index}  {window.rps:.1f} req/s  "
                f"p99 {p99 if p99 is not None else float('nan'):.2f} ms"
                + (f"  errors {errors}" if errors else ""),
            )

        return await measure_step(client, requests, plan, settings, scraper, on_window)


def _meets(step: Step, slo_ms: float) -> bool:
    p99 = step.latency_ms.p99
    return (
        p99 is not None and p99 <= slo_ms and not step.client_bound.flag and not step.errors_by_code
    )


async def _slo_search(
    measure: Callable[[StepPlan], Any],
    base: StepPlan,
    known: dict[float, Step],
    slo_ms: float,
) -> SloResult:
    """Highest target with p99 <= SLO: bracket from the sweep's steps, then bisect."""
    closed = base.mode == "closed"
    probes: dict[float, Step] = dict(known)

    async def probe(target: float) -> Step:
        if target not in probes:
            plan = StepPlan(**{**base.__dict__, "target": target})
            outcome = await measure(plan)
            probes[target] = outcome.step
        return probes[target]

    def ok_targets() -> list[float]:
        return [t for t, s in probes.items() if _meets(s, slo_ms)]

    budget = SLO_MAX_PROBES
    if not ok_targets():  # even the lightest load missed: try lighter ones
        target = min(probes) if probes else 1.0
        while budget and not ok_targets():
            target = max(1.0, math.floor(target / 2)) if closed else target / 2
            if target in probes:
                break
            await probe(target)
            budget -= 1
    if ok_targets():
        lo = max(ok_targets())
        higher = [t for t, s in probes.items() if t > lo and not _meets(s, slo_ms)]
        hi = min(higher) if higher else None
        while budget and hi is None:
            candidate = lo * 2
            step = await probe(candidate)
            budget -= 1
            if _meets(step, slo_ms):
                lo = candidate
            else:
                hi = candidate
        while budget and hi is not None:
            mid = math.floor((lo + hi) / 2) if closed else (lo + hi) / 2
            if mid <= lo or (not closed and (hi - lo) / hi < 0.05):
                break
            step = await probe(mid)
            budget -= 1
            if _meets(step, slo_ms):
                lo = mid
            else:
                hi = mid
    best = max(ok_targets(), default=None)
    return SloResult(
        model=base.model,
        version=base.version,
        mode=base.mode,
        max_target=best,
        max_rps_under_slo=probes[best].achieved_rps if best is not None else None,
        p99_ms_at_max=probes[best].latency_ms.p99 if best is not None else None,
        probes=[
            {
                "target": t,
                "achieved_rps": s.achieved_rps,
                "p99_ms": s.latency_ms.p99 if s.latency_ms.p99 is not None else float("nan"),
            }
            for t, s in sorted(probes.items())
        ],
    )


def _intervals(steps: list[Step]) -> list[ConfidenceInterval]:
    groups: dict[tuple[int, str, float], list[Step]] = {}
    for s in steps:
        if not s.skipped:
            groups.setdefault((s.version, s.mode, s.target), []).append(s)
    out = []
    for (version, mode, target), group in groups.items():
        if len(group) < 2:
            continue
        figures: dict[str, list[float]] = {
            "achieved_rps": [s.achieved_rps for s in group],
            "p50_ms": [s.latency_ms.p50 for s in group if s.latency_ms.p50 is not None],
            "p99_ms": [s.latency_ms.p99 for s in group if s.latency_ms.p99 is not None],
        }
        for figure, values in figures.items():
            ci = bootstrap_ci(values)
            if ci is None:
                continue
            out.append(
                ConfidenceInterval(
                    model=group[0].model,
                    version=version,
                    mode=mode,  # type: ignore[arg-type]
                    target=target,
                    figure=figure,
                    repeats=len(values),
                    mean=float(np.mean(values)),
                    low=ci[0],
                    high=ci[1],
                )
            )
    return out


def _check_options(options: CompareOptions) -> None:
    if (options.server is None) == (options.base_path is None):
        raise UsageError("give exactly one of --server HOST:PORT or --base-path DIR")
    if options.versions and options.labels:
        raise UsageError("give --versions or --labels, not both")
    if not options.concurrency and not options.rates:
        raise UsageError("give --concurrency N,... (closed loop) and/or --rate R,... (open loop)")
    if any(c < 1 for c in options.concurrency) or any(r <= 0 for r in options.rates):
        raise UsageError("--concurrency values must be >= 1 and --rate values > 0")
    if options.repeats < 1:
        raise UsageError("--repeats must be at least 1")
    if options.batching_parameters is not None and options.base_path is None:
        raise UsageError("--batching-parameters needs --base-path (it configures our server)")
    if options.base_path is not None and not options.base_path.is_dir():
        raise UsageError(f"--base-path {options.base_path}: no such directory")
    if options.inputs is not None and not options.inputs.is_dir():
        raise UsageError(f"--inputs {options.inputs}: not a directory")
    if not options.model:
        if options.base_path is None:
            raise UsageError("--model NAME is needed with --server")
        manifest = VariantsManifest.load_if_exists(options.base_path)
        options.model = manifest.model_name if manifest else options.base_path.resolve().name
    s = options.settings
    if s.max_duration_s < s.duration_s:
        raise UsageError("--max-duration must be at least --duration")


def run_compare(options: CompareOptions, console: Console | None = None) -> Results:
    """Run the whole comparison (see the module docstring); returns what it wrote."""
    console = console or Console(stderr=True)
    _check_options(options)
    check_out_dir(options.out)
    run = _Run(options, console)
    with ExitStack() as stack:
        server: EmbeddedServer | None = None
        manifest: VariantsManifest | None = None
        if options.base_path is not None:
            manifest = VariantsManifest.load_if_exists(options.base_path)
            console.print(f"starting the embedded server for {options.base_path} ...")
            server = stack.enter_context(
                EmbeddedServer(options.base_path, options.model, options.batching_parameters)
            )
            address, metrics_url = server.grpc_address, server.metrics_url
        else:
            address, metrics_url = options.server or "", options.metrics_url
        client = stack.enter_context(
            TFServingClient(address, model=options.model, timeout=options.settings.timeout_s)
        )
        client.wait_ready(options.connect_timeout_s)
        known = {v.version: v.variant for v in manifest.loadable()} if manifest else {}
        pairs = resolve_versions(client, options.model, options.versions, options.labels, known)
        first_version, first_label = pairs[0]
        meta = client.metadata(
            options.model,
            None if options.labels else first_version,
            first_label if options.labels else None,
        )
        pool = RequestPool.from_metadata(
            meta, options.batch_size, options.inputs, options.signature
        )
        scraper = stack.enter_context(MetricsScraper(metrics_url))
        if scraper.snapshot() is None:
            scraper = MetricsScraper(None)
        run.results = Results(
            run=RunInfo(
                tool="compare",
                command=options.command,
                started=now_iso(),
                git_sha=git_sha(),
                tfsuite_version=tfsuite_version(),
                machine=machine_info(),
                server=ServerInfo(
                    address=address,
                    kind="embedded" if server else "unknown",
                    rest_address=server.rest_address if server else None,
                    metrics_url=scraper.url,
                    batching=(options.batching_parameters is not None) if server else None,
                ),
                model=options.model,
                complete=False,
                incomplete_reason="running",
                slo_p99_ms=options.slo_p99_ms,
                settings=_settings(options, pool),
            )
        )
        console.print(
            f"{options.model} at {address}: versions "
            + ", ".join(f"{v}" + (f" ({label})" if label else "") for v, label in pairs)
        )
        run.results.versions = _versions_info(
            client, pool, pairs, options, manifest, server, scraper
        )
        run.write()
        try:
            asyncio.run(_sweep(run, address, pool, pairs, scraper))
        except KeyboardInterrupt:
            run.finish(False, "interrupted (Ctrl-C); the steps listed finished")
            raise
    assert run.results is not None
    console.print(versions_table(run.results))
    console.print(versions_summary(run.results))
    console.print(f"results: {options.out / 'results.json'}  {options.out / 'results.csv'}")
    return run.results


def _settings(options: CompareOptions, pool: RequestPool) -> dict[str, Any]:
    s = options.settings
    window, reported = s.windows()
    return {
        "duration_s": s.duration_s,
        "max_duration_s": s.max_duration_s,
        "warmup_s": s.warmup_s,
        "window_s": window,
        "windows_reported": reported,
        "stability": s.stability,
        "max_inflight": s.max_inflight,
        "batch_size": options.batch_size,
        "repeats": options.repeats,
        "interleave": options.interleave,
        "poisson": options.poisson,
        "inputs": pool.source,
        "request_bytes": pool.request_bytes,
        "reference": options.reference,
        "seed": options.seed,
    }


async def _sweep(
    run: _Run,
    address: str,
    pool: RequestPool,
    pairs: list[tuple[int, str | None]],
    scraper: MetricsScraper,
) -> None:
    options, console, results = run.options, run.console, run.results
    assert results is not None
    client = AsyncTFServingClient(address, model=options.model, timeout=options.settings.timeout_s)
    await client.wait_ready(options.connect_timeout_s)
    by_label = bool(options.labels)

    def plan_of(t: _Target) -> StepPlan:
        return StepPlan(
            options.model,
            t.version,
            t.label,
            t.mode,
            t.target,
            options.poisson,
            t.repeat,
            options.batch_size,
            by_label,
        )

    failure = ""
    try:
        for target in _plan(pairs, options):
            plan = plan_of(target)
            if failure:
                results.steps.append(_skipped(plan, "an earlier step failed: " + failure))
                continue
            outcome = await _measure(client, pool, plan, options, scraper, console)
            results.steps.append(outcome.step)
            console.print(step_line(outcome.step), markup=False, highlight=False)
            if outcome.failed:
                failure = outcome.reason
                console.print(f"error: {failure}; the remaining steps are skipped", markup=False)
            run.write()
        if options.slo_p99_ms is not None and not failure:
            await _slo(run, client, pool, pairs, scraper, plan_of)
        results.intervals = _intervals(results.steps)
    finally:
        await client.close()
    run.finish(not failure, failure)


async def _slo(
    run: _Run,
    client: AsyncTFServingClient,
    pool: RequestPool,
    pairs: list[tuple[int, str | None]],
    scraper: MetricsScraper,
    plan_of: Callable[[_Target], StepPlan],
) -> None:
    options, results = run.options, run.results
    assert results is not None and options.slo_p99_ms is not None
    mode: Literal["closed", "open"] = "open" if options.rates else "closed"
    for version, label in pairs:
        known = {
            s.target: s
            for s in results.steps
            if s.version == version and s.mode == mode and s.repeat == 0 and not s.skipped
        }
        base = plan_of(_Target(version, label, mode, 1.0, 0))
        run.console.print(
            f"v{version}: searching the highest {mode}-loop load with p99 <= "
            f"{options.slo_p99_ms:g} ms"
        )

        async def measure(plan: StepPlan) -> StepOutcome:
            outcome = await _measure(client, pool, plan, options, scraper, run.console)
            run.console.print("  probe " + step_line(outcome.step), markup=False, highlight=False)
            return outcome

        results.slo.append(await _slo_search(measure, base, known, options.slo_p99_ms))
        run.write()
