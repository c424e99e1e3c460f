"""Click commands: ``export`` (also ``export-variants``), ``inspect`` and ``freeze``."""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["export", "freeze", "inspect"]


def _csv_ints(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: use comma-separated integers, e.g. 1,8,32") from None


def _tolerances(items: tuple[str, ...]) -> dict[str, dict[str, float]]:
    from tfsuite.export.errors import ExportUsageError
    from tfsuite.export.validate import DEFAULT_TOLERANCES

    result: dict[str, dict[str, float]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        variant, dot, metric = key.partition(".")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or not dot or number is None:
            raise ExportUsageError(
                f"--tolerance {item!r}: use VARIANT.METRIC=NUMBER, e.g. weight_quant.max_rel_error=0.2"
            )
        if variant not in DEFAULT_TOLERANCES:
            raise ExportUsageError(
                f"--tolerance {item!r}: unknown variant {variant!r}; valid: {', '.join(DEFAULT_TOLERANCES)}"
            )
        metrics = DEFAULT_TOLERANCES[variant]
        if metric not in metrics:
            # A typo'd metric would otherwise be recorded and silently never checked.
            raise ExportUsageError(
                f"--tolerance {item!r}: unknown metric {metric!r}; valid: {', '.join(metrics)}"
            )
        result.setdefault(variant, {})[metric] = number
    return result


@click.command(name="export")
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--base-path",
    "--model_base_path",
    "base_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Model base path: versions go to <base>/<N>/.",
)
@click.option(
    "--variants",
    default="original,weight_quant,trt_fp16,trt_int8",
    show_default=True,
    help="Comma-separated: original, optimized, weight_quant, fp16_weights, trt_fp32, trt_fp16, trt_int8.",
)
@click.option(
    "--model-name",
    default=None,
    help="Name recorded in variants.json (default: the base path's name).",
)
@click.option(
    "--inputs",
    "inputs",
    multiple=True,
    help="Input name[:shape], e.g. image_tensor or input:1x224x224x3 (repeatable).",
)
@click.option("--outputs", default=None, help="Comma-separated output names (default: detected).")
@click.option(
    "--input-shape",
    "input_shapes",
    multiple=True,
    help="Set an input's shape, e.g. to pin unknown dims: name:1x224x224x3 (repeatable); a known dim given differently replaces it if the graph still imports.",
)
@click.option(
    "--signature", default=None, help="SavedModel signature to export (default serving_default)."
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace existing versions: rebuild up-to-date ones, retry skipped TF-TRT, accept a new source or signature (default: refuse).",
)
@click.option(
    "--batch-sizes",
    default="1",
    callback=_csv_ints,
    show_default=True,
    help="TF-TRT: pre-build engines for these batch sizes.",
)
@click.option(
    "--calibration-data",
    type=click.Path(path_type=Path),
    default=None,
    help="TF-TRT INT8: directory of calibration images (default: synthetic).",
)
@click.option(
    "--max-workspace",
    default=1 << 30,
    show_default=True,
    type=click.IntRange(min=1),
    help="TF-TRT max_workspace_size_bytes.",
)
@click.option(
    "--minimum-segment-size",
    default=3,
    show_default=True,
    type=click.IntRange(min=1),
    help="TF-TRT minimum_segment_size.",
)
@click.option(
    "--max-cached-engines",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="TF-TRT maximum_cached_engines.",
)
@click.option(
    "--tolerance",
    "tolerances",
    multiple=True,
    help="Override a validation limit: VARIANT.METRIC=NUMBER (repeatable).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print variants.json to stdout instead of the table."
)
def export(
    source: Path,
    base_path: Path,
    variants: str,
    model_name: str | None,
    inputs: tuple[str, ...],
    outputs: str | None,
    input_shapes: tuple[str, ...],
    signature: str | None,
    overwrite: bool,
    batch_sizes: tuple[int, ...],
    calibration_data: Path | None,
    max_workspace: int,
    minimum_segment_size: int,
    max_cached_engines: int,
    tolerances: tuple[str, ...],
    as_json: bool,
) -> None:
    """Turn SOURCE (frozen .pb, SavedModel dir, Keras file) into validated variants under --base-path.

    Each variant is built in a hidden temp dir, run on the same fixed inputs as SOURCE and
    published as <base>/<N>/ only if it agrees (1 original, 2 weight_quant, 3 trt_fp16,
    4 trt_int8; other variants take the next free numbers). <base>/variants.json records
    every variant, including skipped and failed ones. Without TensorRT (every TF >= 2.18
    wheel) the trt_* variants are recorded as skipped, with the command to run instead.
    Re-running with the same source and signature leaves built versions alone.
    """
    from tfsuite.export.api import export_variants
    from tfsuite.export.trt import TrtOptions

    manifest = export_variants(
        source,
        base_path,
        variants=variants,
        model_name=model_name,
        overwrite=overwrite,
        inputs=list(inputs),
        outputs=outputs,
        input_shapes=list(input_shapes),
        batch_sizes=batch_sizes,
        calibration_data=calibration_data,
        progress=not as_json,
        signature=signature,
        tolerances=_tolerances(tolerances),
        trt_options=TrtOptions(
            max_workspace_bytes=max_workspace,
            minimum_segment_size=minimum_segment_size,
            max_cached_engines=max_cached_engines,
        ),
    )
    if as_json:
        click.echo(json.dumps(manifest.model_dump(mode="json"), indent=2))


@click.command(name="inspect")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect(path: Path, as_json: bool) -> None:
    """Show signatures, inputs/outputs, op histogram and size of a SavedModel or frozen graph."""
    from tfsuite.export.inspection import inspect_model, render_inspection

    info = inspect_model(path)
    if as_json:
        click.echo(json.dumps(info.model_dump(mode="json"), indent=2))
    else:
        render_inspection(info)


@click.command(name="freeze")
@click.argument("saved_model", type=click.Path(path_type=Path))
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="Frozen GraphDef to write (.pb)."
)
@click.option(
    "--signature", default="serving_default", show_default=True, help="Signature to freeze."
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace --out if it exists (refused otherwise, as export does).",
)
def freeze(saved_model: Path, out: Path, signature: str, overwrite: bool) -> None:
    """Freeze a SavedModel signature into a frozen GraphDef (the reverse of seed 002 step 1).

    Output nodes are renamed after their signature keys where the name is free, so
    `tfsuite export` detects the same names again. The file is written atomically.
    """
    from tfsuite.export.freezing import freeze_saved_model

    result = freeze_saved_model(saved_model, out, signature=signature, overwrite=overwrite)
    click.echo(
        f"wrote {result.path} ({len(result.graph_def.node)} nodes); inputs: {', '.join(result.inputs)}; outputs: {', '.join(result.outputs)}"
    )
