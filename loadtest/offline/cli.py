"""``tfsuite bench``: the offline benchmark matrix from the command line."""

from __future__ import annotations

import re
from pathlib import Path

import click

from tfsuite.loadtest.offline.errors import BenchUsageError

__all__ = ["bench", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min)?\s*$")


def parse_duration(text: str, option: str = "--duration") -> float:
    """``"10s"`` / ``"500ms"`` / ``"2m"`` / ``"10"`` -> seconds."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise BenchUsageError(
            f"{option} {text!r} is not a positive duration; use e.g. 10s, 500ms or 2m"
        )
    value, unit = float(match.group(1)), match.group(2) or "s"
    return value * {"ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0}[unit]


def _items(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: the comma lists of --versions/--variants/--backends."""
    return [s.strip() for s in text.split(",") if s.strip()]


def _versions(text: str) -> list[int]:
    items = _items(text)
    if not items or not all(s.isdigit() and int(s) > 0 for s in items):
        raise BenchUsageError(f"--versions {text!r} must be positive integers, e.g. --versions 1,2")
    return [int(s) for s in items]


@click.command(name="bench")
@click.option(
    "--base-path",
    type=click.Path(path_type=Path),
    help="Model base path (1/, 2/, ... + variants.json).",
)
@click.option(
    "--assignment",
    type=click.Path(path_type=Path),
    help="assignment.csv: model,batch_sizes,variants[,name,backends,input_shape] (seed 003's "
    "Tasks,batch_size,precision accepted); exports what is missing, then runs every line.",
)
@click.option("--versions", help="Comma-separated version numbers to run (default: all).")
@click.option(
    "--variants", help="Comma-separated variant names to run, e.g. original,weight_quant."
)
@click.option(
    "--model-name", help="Name for the model in the tables (default: from variants.json)."
)
@click.option(
    "--batch-sizes",
    default="1",
    show_default=True,
    help="Comma-separated batch sizes, e.g. 1,8,32.",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="Untimed warm-up iterations.",
)
@click.option(
    "--iterations",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Timed iterations per case.",
)
@click.option("--duration", help="Measure each case for this long instead (10s, 500ms, 2m).")
@click.option(
    "--backends", default="tf", show_default=True, help="Comma-separated: tf, onnxruntime, tf-trt."
)
@click.option("--threads", type=click.IntRange(min=1), help="Intra-op threads for every backend.")
@click.option(
    "--input-shape",
    "input_shapes",
    multiple=True,
    help="Shape for dynamic dims, NAME:1x300x300x3 (batch dim replaced by the batch size). "
    "Repeatable.",
)
@click.option(
    "--convert-timeout",
    help="Run tf2onnx in a subprocess killed after this long (e.g. 10m); isolates a conversion "
    "hang or crash. Default: in-process.",
)
@click.option(
    "--onnx-spin/--no-onnx-spin",
    default=True,
    show_default=True,
    help="onnxruntime's idle threads spin (its default); --no-onnx-spin on a CPU shared with "
    "other work.",
)
@click.option(
    "--display-every",
    type=click.IntRange(min=0),
    default=0,
    help="Also print seed 000's 'step N/M, iter_time(ms)=..., images/sec=...' every N iterations "
    "(from the recorded times, after the case).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the synthetic inputs."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output directory (created if missing); the tables are rewritten after every case.",
)
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Show a progress bar."
)
def bench(
    base_path: Path | None,
    assignment: Path | None,
    versions: str | None,
    variants: str | None,
    model_name: str | None,
    batch_sizes: str,
    warmup: int,
    iterations: int,
    duration: str | None,
    backends: str,
    threads: int | None,
    input_shapes: tuple[str, ...],
    convert_timeout: str | None,
    onnx_spin: bool,
    display_every: int,
    seed: int,
    out: Path,
    progress: bool,
) -> None:
    """Offline benchmark matrix: model variants x batch sizes x backends.

    Writes table.csv/md, bench.json, Chrome traces, logs and throughput.png to --out and
    prints each case as seed 000 does. A case that fails is recorded (with its log) and the
    matrix continues; Ctrl-C keeps the finished rows."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from tfsuite.loadtest.offline import BenchJob, BenchSettings, jobs_from_assignment, run_bench
    from tfsuite.loadtest.offline.backends import check_backends
    from tfsuite.loadtest.offline.inputs import parse_batch_sizes, parse_input_shapes
    from tfsuite.loadtest.offline.runner import CaseResult
    from tfsuite.loadtest.offline.stats import format_seed000, format_steps
    from tfsuite.loadtest.offline.targets import targets_from_base_path

    if (base_path is None) == (assignment is None):
        raise BenchUsageError("give exactly one of --base-path DIR or --assignment FILE")
    if versions and variants:
        raise BenchUsageError("give --versions or --variants, not both")
    explicit = click.get_current_context().get_parameter_source("iterations")
    if duration and explicit is not click.core.ParameterSource.DEFAULT:
        raise BenchUsageError("give --iterations or --duration, not both")
    backend_names = _items(backends)
    check_backends(backend_names)
    settings = BenchSettings(
        out=out,
        batch_sizes=parse_batch_sizes(batch_sizes),
        backends=backend_names,
        warmup=warmup,
        iterations=iterations,
        duration_s=parse_duration(duration) if duration else None,
        threads=threads,
        input_shapes=parse_input_shapes(input_shapes),
        seed=seed,
        convert_timeout_s=parse_duration(convert_timeout, "--convert-timeout")
        if convert_timeout
        else None,
        onnx_spinning=onnx_spin,
    )
    if assignment is not None:
        jobs = jobs_from_assignment(assignment, settings)
    else:
        assert base_path is not None
        targets = targets_from_base_path(
            base_path,
            versions=_versions(versions) if versions else None,
            variants=_items(variants) if variants else None,
            model_name=model_name,
        )
        jobs = [BenchJob(targets, settings)]

    console = Console(highlight=False)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not progress,
        transient=True,
    )
    task = bar.add_task("bench", total=sum(j.total_cases for j in jobs))

    def on_start(case: str, index: int, total: int) -> None:
        bar.update(task, description=case, completed=index)

    def on_result(r: CaseResult) -> None:
        bar.advance(task)
        variant = f"{r.variant} (v{r.version}, {r.precision or '-'})"
        title = f"{r.model} {variant} {r.backend},batch={r.batch_size}"
        if r.stats is not None:
            console.print(
                format_seed000(
                    title,
                    r.model,
                    r.stats,
                    format_steps(r.latencies_ns, r.batch_size, display_every)
                    if display_every
                    else "",
                ),
                markup=False,
                end="",
                soft_wrap=True,
            )
        else:
            console.print(
                f"=========={title}\n    {r.status}: {r.error}\n    log: {r.log_path}",
                markup=False,
                soft_wrap=True,
            )

    try:
        with bar:
            report = run_bench(jobs, on_start=on_start, on_result=on_result)
    except KeyboardInterrupt:
        console.print(
            f"interrupted: the {bar.tasks[0].completed:.0f} finished cases are kept in {out}",
            markup=False,
            soft_wrap=True,
        )
        raise
    failed = sum(r.status == "failed" for r in report.results)
    console.print(
        f"{len(report.results)} cases ({failed} failed, "
        f"{sum(r.status == 'skipped' for r in report.results)} skipped) -> {out / 'table.md'}\n"
        f"{report.overhead_line()}",
        markup=False,
        soft_wrap=True,
    )
