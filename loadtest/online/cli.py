"""``tfsuite compare``: per-version load sweeps against TF Serving or the embedded server."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click

from tfsuite.errors import UsageError

__all__ = ["compare", "parse_duration", "parse_share"]

_DURATION = re.compile(r"^\s*(?P<n>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>ms|s|m|min|h)?\s*$")
_UNITS = {None: 1.0, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str, option: str) -> float:
    """'30s', '2m', '500ms', '1.5' (seconds) -> seconds."""
    m = _DURATION.match(text)
    if m is None or float(m["n"]) <= 0:
        raise UsageError(f"{option} takes a positive duration like 30s, 2m or 500ms, not {text!r}")
    return float(m["n"]) * _UNITS[m["unit"]]


def parse_share(text: str, option: str) -> float:
    """'10%' or '0.1' -> 0.1."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise UsageError(f"{option} takes a share like 10% or 0.1, not {text!r}")
    return value


def _numbers(text: str | None, option: str, kind: type) -> list:  # type: ignore[type-arg]
    if not text:
        return []
    try:
        values = [kind(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise UsageError(f"{option} takes a comma list of numbers, not {text!r}") from None
    if not values:
        raise UsageError(f"{option} takes a comma list of numbers, not {text!r}")
    return values


def _command_line(ctx: click.Context) -> str:
    """The command as given: every option the user set, in canonical form."""
    parts = ["tfsuite", "compare"]
    for param in ctx.command.params:
        name = param.name or ""
        if ctx.get_parameter_source(name) != click.core.ParameterSource.COMMANDLINE:
            continue
        flag = param.opts[0]  # type: ignore[attr-defined]
        value = ctx.params[name]
        if isinstance(param, click.Option) and param.is_flag:
            parts.append(flag)
        else:
            parts += [flag, str(value)]
    return shlex.join(parts)


def _words(text: str | None) -> list[str]:
    return [w.strip() for w in (text or "").split(",") if w.strip()]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--server", metavar="HOST:PORT", help="gRPC address of a running TF Serving.")
@click.option(
    "--base-path",
    type=click.Path(path_type=Path),
    help="Model base path to serve with the embedded server (started in its own process).",
)
@click.option(
    "--batching-parameters",
    type=click.Path(path_type=Path),
    help="With --base-path: a BatchingParameters file; turns server-side batching on.",
)
@click.option(
    "--model",
    help="Model name on the server (with --base-path: default the name in variants.json).",
)
@click.option("--versions", help="Version numbers to compare, e.g. 1,2 (default: all available).")
@click.option("--labels", help="Version labels to compare instead, e.g. original,weight_quant.")
@click.option("--concurrency", help="Closed loop: requests in flight per step, e.g. 1,4,16,32.")
@click.option("--rate", help="Open loop: requests/s per step, e.g. 20,50,100.")
@click.option("--poisson", is_flag=True, help="Open loop: Poisson arrivals (default: constant).")
@click.option("--duration", default="30s", show_default=True, help="Measured time per step.")
@click.option(
    "--max-duration",
    default="120s",
    show_default=True,
    help="A step not stable by then ends, marked unstable.",
)
@click.option("--warmup", default="2s", show_default=True, help="Unmeasured time per step.")
@click.option("--window", default="5s", show_default=True, help="Measurement window.")
@click.option(
    "--stability",
    default="10%",
    show_default=True,
    help="Last 3 windows within this of their mean (throughput and p99).",
)
@click.option("--batch-size", type=click.IntRange(1, 4096), default=1, show_default=True)
@click.option(
    "--inputs",
    type=click.Path(path_type=Path),
    help="Directory of .npy/.npz/images (default: synthetic, from GetModelMetadata).",
)
@click.option("--signature", help="Signature name (default: serving_default).")
@click.option("--slo-p99-ms", type=click.FloatRange(min=0, min_open=True), help="p99 SLO, ms.")
@click.option("--interleave", is_flag=True, help="Run rounds of all steps in random order.")
@click.option("--repeats", type=click.IntRange(1, 100), default=1, show_default=True)
@click.option("--reference", help="Agreement reference version or label (default: the first).")
@click.option("--metrics-url", help="With --server: its Prometheus endpoint (http://...).")
@click.option(
    "--max-inflight",
    type=click.IntRange(1, 100_000),
    default=256,
    show_default=True,
    help="Open loop: at most this many requests outstanding.",
)
@click.option("--timeout", "timeout_", default="30s", show_default=True, help="Per request.")
@click.option("--connect-timeout", default="10s", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Poisson/interleave seed.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output directory.")
def compare(**kw: object) -> None:
    """Compare a model's versions under load: latency, throughput, batching, agreement."""
    from tfsuite.loadtest.online.profiler import StepSettings
    from tfsuite.loadtest.online.sweep import CompareOptions, run_compare

    settings = StepSettings(
        duration_s=parse_duration(str(kw["duration"]), "--duration"),
        max_duration_s=parse_duration(str(kw["max_duration"]), "--max-duration"),
        warmup_s=parse_duration(str(kw["warmup"]), "--warmup"),
        window_s=parse_duration(str(kw["window"]), "--window"),
        stability=parse_share(str(kw["stability"]), "--stability"),
        max_inflight=int(kw["max_inflight"]),  # type: ignore[call-overload]
        timeout_s=parse_duration(str(kw["timeout_"]), "--timeout"),
        seed=int(kw["seed"]),  # type: ignore[call-overload]
    )
    options = CompareOptions(
        model=str(kw["model"] or ""),
        out=kw["out"],  # type: ignore[arg-type]
        server=kw["server"],  # type: ignore[arg-type]
        base_path=kw["base_path"],  # type: ignore[arg-type]
        batching_parameters=kw["batching_parameters"],  # type: ignore[arg-type]
        metrics_url=kw["metrics_url"],  # type: ignore[arg-type]
        versions=_numbers(kw["versions"], "--versions", int),  # type: ignore[arg-type]
        labels=_words(kw["labels"]),  # type: ignore[arg-type]
        concurrency=_numbers(kw["concurrency"], "--concurrency", int),  # type: ignore[arg-type]
        rates=_numbers(kw["rate"], "--rate", float),  # type: ignore[arg-type]
        poisson=bool(kw["poisson"]),
        batch_size=int(kw["batch_size"]),  # type: ignore[call-overload]
        inputs=kw["inputs"],  # type: ignore[arg-type]
        signature=kw["signature"],  # type: ignore[arg-type]
        slo_p99_ms=kw["slo_p99_ms"],  # type: ignore[arg-type]
        interleave=bool(kw["interleave"]),
        repeats=int(kw["repeats"]),  # type: ignore[call-overload]
        reference=kw["reference"],  # type: ignore[arg-type]
        settings=settings,
        connect_timeout_s=parse_duration(str(kw["connect_timeout"]), "--connect-timeout"),
        command=_command_line(click.get_current_context()),
        seed=int(kw["seed"]),  # type: ignore[call-overload]
    )
    run_compare(options)
