"""``tfsuite configs``: write the TF Serving config files for one or more model base paths."""

from __future__ import annotations

import logging
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from tfsuite.errors import UsageError
from tfsuite.serving_configs.batching import BatchingOptions, BatchingParameters, parse_sizes
from tfsuite.serving_configs.bundle import ConfigBundle, ModelSource
from tfsuite.serving_configs.monitoring import DEFAULT_METRICS_PATH

__all__ = ["configs"]

log = logging.getLogger(__name__)


@click.command("configs")
@click.option(
    "--base-path",
    "base_paths",
    multiple=True,
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Model base path (<version>/ SavedModels + variants.json). Repeat for more models.",
)
@click.option(
    "--name",
    "names",
    multiple=True,
    help="Served model name, one per --base-path in the same order "
    "(default: variants.json's model_name, else the directory name).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write models.config, batching_parameters.txt and monitoring.config into.",
)
@click.option(
    "--policy",
    type=click.Choice(["specific", "latest", "all"]),
    default="specific",
    show_default=True,
    help="Version policy: specific = every loadable variant, labelled by variant name; "
    "latest = newest version only; all = every version dir.",
)
@click.option("--max-batch-size", type=int, help="max_batch_size (TF Serving default 1000).")
@click.option("--batch-timeout-micros", type=int, help="batch_timeout_micros (default 0).")
@click.option("--num-batch-threads", type=int, help="num_batch_threads (default: server's cores).")
@click.option("--max-enqueued-batches", type=int, help="max_enqueued_batches (default 10).")
@click.option(
    "--allowed-batch-sizes",
    help="Comma-separated, increasing, e.g. 8,16,32; the last must equal --max-batch-size "
    "(which defaults to it when not given).",
)
@click.option(
    "--pad-variable-length-inputs",
    is_flag=True,
    default=False,
    help="Pad ragged inputs in a batch.",
)
@click.option(
    "--metrics-path",
    default=DEFAULT_METRICS_PATH,
    show_default=True,
    help="Prometheus path written to monitoring.config.",
)
@click.option(
    "--container-root",
    help="Write base paths as a container sees them when --out is mounted there "
    "(e.g. /models for `tfsuite up` and compose/docker-compose.yml); base paths must be "
    "inside --out.",
)
def configs(
    base_paths: tuple[Path, ...],
    names: tuple[str, ...],
    out_dir: Path,
    policy: str,
    max_batch_size: int | None,
    batch_timeout_micros: int | None,
    num_batch_threads: int | None,
    max_enqueued_batches: int | None,
    allowed_batch_sizes: str | None,
    pad_variable_length_inputs: bool,
    metrics_path: str,
    container_root: str | None,
) -> None:
    """Write TF Serving config files (models.config, batching, monitoring) for base paths.

    \b
    Example (then: tfsuite up models, or MODELS_DIR=$PWD/models docker compose
    -f compose/docker-compose.yml --profile cpu up):
      tfsuite configs --base-path models/ssd --out models --container-root /models \\
        --max-batch-size 32 --batch-timeout-micros 1000 --allowed-batch-sizes 8,16,32
    """
    if names and len(names) != len(base_paths):
        raise UsageError(
            f"got {len(names)} --name for {len(base_paths)} --base-path; give one --name per "
            "--base-path (same order) or none"
        )
    sources = [ModelSource(base, names[i] if names else None) for i, base in enumerate(base_paths)]
    batching = _batching(
        max_batch_size,
        batch_timeout_micros,
        num_batch_threads,
        max_enqueued_batches,
        allowed_batch_sizes,
        pad_variable_length_inputs,
    )
    bundle = ConfigBundle.build(
        sources,
        out_dir=out_dir,
        policy=policy,  # type: ignore[arg-type]
        batching=batching,
        metrics_path=metrics_path,
        container_root=container_root,
    )
    written = bundle.write(out_dir)
    _report(bundle, written)
    if container_root:
        log.info(
            "serve with: tfsuite up %s (or MODELS_DIR=%s docker compose -f "
            "compose/docker-compose.yml --profile cpu up)",
            out_dir,
            out_dir.resolve(),
        )
    else:
        log.info(
            "serve with: tfsuite serve --model_config_file=%s --enable_batching "
            "--batching_parameters_file=%s --monitoring_config_file=%s --rest_api_port=8501",
            written["model_config"],
            written["batching"],
            written["monitoring"],
        )


def _batching(
    max_batch_size: int | None,
    batch_timeout_micros: int | None,
    num_batch_threads: int | None,
    max_enqueued_batches: int | None,
    allowed_batch_sizes: str | None,
    pad: bool,
) -> BatchingParameters:
    """Only what the user set goes into the file; TF Serving applies its defaults to the rest
    (num_batch_threads in particular must default to the *server's* core count)."""
    msg = BatchingParameters()
    sizes = parse_sizes(allowed_batch_sizes) if allowed_batch_sizes else ()
    if max_batch_size is None and sizes:
        max_batch_size = sizes[-1]
    for name, value in (
        ("max_batch_size", max_batch_size),
        ("batch_timeout_micros", batch_timeout_micros),
        ("max_enqueued_batches", max_enqueued_batches),
        ("num_batch_threads", num_batch_threads),
    ):
        if value is not None:
            getattr(msg, name).value = value
    msg.allowed_batch_sizes.extend(sizes)
    msg.pad_variable_length_inputs = pad
    return msg


def _report(bundle: ConfigBundle, written: dict[str, Path]) -> None:
    console = Console()
    models = Table(title=f"models in {written['model_config']}")
    for column in ("name", "base_path", "policy", "versions", "labels"):
        models.add_column(column)
    for cfg in bundle.model_config.model_config_list.config:
        policy = cfg.model_version_policy
        kind = policy.WhichOneof("policy_choice") or "latest"
        versions = (
            ", ".join(map(str, policy.specific.versions))
            if kind == "specific"
            else (f"newest {policy.latest.num_versions or 1}" if kind == "latest" else "every dir")
        )
        by_version = sorted(cfg.version_labels.items(), key=lambda kv: kv[1])
        labels = ", ".join(f"{k}={v}" for k, v in by_version)
        models.add_row(cfg.name, cfg.base_path, kind, versions, labels or "-")
    console.print(models)
    opts = BatchingOptions.from_proto(bundle.batching)
    set_fields = {f.name for f, _ in bundle.batching.ListFields()}
    batching = ", ".join(
        f"{name}={getattr(opts, name)}" + ("" if name in set_fields else " (default)")
        for name in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches")
    )
    batching += (
        f", num_batch_threads={opts.num_batch_threads}"
        if "num_batch_threads" in set_fields
        else ", num_batch_threads=<server's cores> (default)"
    )
    if opts.allowed_batch_sizes:
        batching += f", allowed_batch_sizes={list(opts.allowed_batch_sizes)}"
    console.print(f"wrote {written['batching']}: {batching}")
    prom = bundle.monitoring.prometheus_config
    console.print(f"wrote {written['monitoring']}: prometheus at {prom.path}")
