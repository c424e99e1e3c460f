"""``export_variants``: one model in, versioned and validated variants out.

Order of work, so that bad input writes nothing: check variant names, source, calibration
dir and base path; load the source and pick its signature; plan version numbers and refuse
overwrites; only then build each variant in a hidden temp dir, validate it against the
source graph on fixed inputs, and rename it into place (or record why not).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from pydantic import ValidationError
from rich.console import Console

from tfsuite.export.basepath import (
    assign_versions,
    base_path_lock,
    content_sha256,
    publish,
    remove_version,
    scan_base_path,
    staging_dir,
    sweep_stale_staging,
)
from tfsuite.export.errors import ExportUsageError
from tfsuite.export.graphs import op_histogram
from tfsuite.export.loading import load_source, source_format, source_sha256
from tfsuite.export.manifest import (
    MANIFEST_NAME,
    TensorSpecInfo,
    Validation,
    VariantRecord,
    VariantsManifest,
)
from tfsuite.export.report import StepProgress, print_summary
from tfsuite.export.saving import dir_size
from tfsuite.export.signatures import parse_input_specs, parse_shape
from tfsuite.export.trt import TRT_PRECISIONS, TrtOptions, calibration_images
from tfsuite.export.validate import (
    DEFAULT_TOLERANCES,
    FixedInputs,
    compare_outputs,
    fixed_inputs,
    run_reference,
    run_saved_model,
)
from tfsuite.export.variants import (
    DEFAULT_VARIANTS,
    VARIANTS,
    BuildContext,
    VariantSkipped,
    VariantSpec,
)

__all__ = ["export_variants", "parse_variant_names"]

log = logging.getLogger(__name__)

Shape = Sequence[int | None]


def parse_variant_names(
    variants: str | Sequence[str] | None, registry: Mapping[str, VariantSpec] = VARIANTS
) -> list[str]:
    """``"original,weight_quant"`` -> list; unknown names -> usage error listing the valid ones."""
    if variants is None:
        return list(DEFAULT_VARIANTS)
    names = list(dict.fromkeys(_csv_items(variants)))
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise ExportUsageError(
            f"unknown variant(s) {', '.join(unknown)}; valid: {', '.join(registry)}"
        )
    if not names:
        raise ExportUsageError(f"no variant requested; valid: {', '.join(registry)}")
    return names


def _input_shapes(
    value: Mapping[str, Shape | str] | Sequence[str] | None,
) -> dict[str, list[int | None]]:
    if not value:
        return {}
    if isinstance(value, Mapping):
        return {k: parse_shape(v) if isinstance(v, str) else list(v) for k, v in value.items()}
    shapes: dict[str, list[int | None]] = {}
    for item in value:
        name, sep, shape = item.partition(":")
        if not sep or not shape:
            raise ExportUsageError(f"--input-shape {item!r}: use name:1x224x224x3")
        shapes[name] = parse_shape(shape)
    return shapes


def _inputs(
    value: Mapping[str, Shape | None] | Sequence[str] | None,
) -> dict[str, list[int | None] | None]:
    if not value:
        return {}
    if isinstance(value, Mapping):
        return {k: None if v is None else list(v) for k, v in value.items()}
    return parse_input_specs(value)


def _csv_items(value: str | Sequence[str]) -> list[str]:
    """``"a, b"`` or ``["a,b", "c"]`` (repeated CLI options) -> ``["a", "b", "c"]``."""
    items = value.split(",") if isinstance(value, str) else [p for v in value for p in v.split(",")]
    return [i.strip() for i in items if i.strip()]


def _outputs(value: str | Sequence[str] | None) -> list[str]:
    return _csv_items(value) if value else []


def _check_model_name(name: str, given: bool) -> str:
    """The serving configs' rule: the name ends up in ``/v1/models/<name>`` and metric labels."""
    if not name or any(c in name for c in "/:") or any(c.isspace() for c in name):
        where = (
            f"--model-name {name!r}"
            if given
            else f"the base path's name {name!r} (the default model name)"
        )
        raise ExportUsageError(
            f"{where} is empty or has '/', ':' or whitespace; pass a --model-name like my_model"
        )
    return name


def _load_manifest(base: Path) -> VariantsManifest | None:
    try:
        return VariantsManifest.load_if_exists(base)
    except (ValidationError, ValueError) as exc:
        raise ExportUsageError(
            f"{VariantsManifest.path_in(base)} is not a valid variants manifest ({type(exc).__name__}); move it away or choose another --base-path"
        ) from None


def _names(specs: Sequence[TensorSpecInfo]) -> str:
    return (
        ",".join(
            f"{s.name}:{'x'.join('?' if d is None else str(d) for d in s.shape)}" for s in specs
        )
        or "-"
    )


def _check_overwrites(
    base: Path,
    plan: dict[str, int],
    existing: dict[int, Path],
    manifest: VariantsManifest | None,
    sha: str,
    signature: tuple[list[TensorSpecInfo], list[TensorSpecInfo]],
    overwrite: bool,
) -> dict[str, str]:
    """Variant -> why it needs no work this run; a usage error for anything that would be
    overwritten or no longer matches what was asked."""
    if overwrite:
        return {}
    if manifest is not None and manifest.source_sha256 != sha and manifest.variants:
        raise ExportUsageError(
            f"base path {str(base)!r} holds variants of a different source (sha256 {manifest.source_sha256[:12]}...); "
            "pass --overwrite to replace them or choose another --base-path"
        )
    if (
        manifest is not None
        and manifest.loadable()
        and (manifest.inputs, manifest.outputs) != signature
    ):
        # Same source, other --inputs/--outputs/--input-shape: the published versions have the
        # recorded signature, so calling them "up to date" (or rewriting the record) would lie.
        raise ExportUsageError(
            f"base path {str(base)!r} holds versions with inputs {_names(manifest.inputs)} and outputs "
            f"{_names(manifest.outputs)}, not the {_names(signature[0])} / {_names(signature[1])} asked for now; "
            "pass --overwrite to rebuild them or choose another --base-path"
        )
    current: dict[str, str] = {}
    for name, version in plan.items():
        record = manifest.by_variant(name) if manifest else None
        if record and record.status == "ok" and record.source_sha256 == sha and version in existing:
            if not record.content_sha256:
                current[name] = "up to date (no content digest on record yet: recorded now)"
            elif content_sha256(existing[version]) != record.content_sha256:
                raise ExportUsageError(
                    f"version {version} ({name}) in {str(base)!r} is damaged: its files no longer "
                    f"match the sha256 recorded in {MANIFEST_NAME} when it was exported; pass "
                    "--overwrite to rebuild it"
                )
            else:
                current[name] = "up to date (content verified)"
        elif version in existing:
            raise ExportUsageError(
                f"version {version} already exists in {str(base)!r}; pass --overwrite to replace it"
            )
        elif (
            record
            and record.status == "skipped"
            and name in TRT_PRECISIONS
            and record.source_sha256 == sha
            and record.tf_version == tf.__version__
        ):
            # Same TensorFlow build: trying TF-TRT again would give the same answer.
            current[name] = (
                f"up to date (skipped: {record.reason.split(';')[0].split(' (')[0]}; --overwrite tries again)"
            )
    return current


def export_variants(
    source: str | os.PathLike[str],
    base_path: str | os.PathLike[str],
    *,
    variants: str | Sequence[str] | None = None,
    model_name: str | None = None,
    overwrite: bool = False,
    inputs: Mapping[str, Shape | None] | Sequence[str] | None = None,
    outputs: str | Sequence[str] | None = None,
    input_shapes: Mapping[str, Shape | str] | Sequence[str] | None = None,
    batch_sizes: Sequence[int] = (1,),
    calibration_data: str | os.PathLike[str] | None = None,
    progress: bool = True,
    signature: str | None = None,
    tolerances: Mapping[str, Mapping[str, float]] | None = None,
    trt_options: TrtOptions | None = None,
    registry: Mapping[str, VariantSpec] | None = None,
    console: Console | None = None,
) -> VariantsManifest:
    """Build, validate and publish the requested variants of ``source`` under ``base_path``.

    Returns the manifest written to ``<base_path>/variants.json``. ``tolerances`` overrides
    :data:`~tfsuite.export.validate.DEFAULT_TOLERANCES` per variant; ``registry`` replaces the
    builder table (tests use it to inject a deliberately broken variant).
    """
    registry = dict(registry or VARIANTS)
    names = parse_variant_names(variants, registry)
    src = Path(source)
    source_format(src)  # missing path / not a model: fail before anything else
    base = Path(base_path)
    checked_name = _check_model_name(model_name, given=True) if model_name is not None else None
    base_trt = trt_options or TrtOptions()
    trt = dataclasses.replace(
        base_trt, batch_sizes=tuple(int(b) for b in (batch_sizes or base_trt.batch_sizes))
    )
    if any(b < 1 for b in trt.batch_sizes):
        raise ExportUsageError(
            f"--batch-sizes must be positive integers, got {list(trt.batch_sizes)}"
        )
    for flag, value in (
        ("--max-workspace", trt.max_workspace_bytes),
        ("--minimum-segment-size", trt.minimum_segment_size),
        ("--max-cached-engines", trt.max_cached_engines),
    ):
        if value < 1:
            raise ExportUsageError(f"{flag} must be a positive integer, got {value}")
    if calibration_data is not None:
        trt = dataclasses.replace(trt, calibration_data=Path(calibration_data))
        calibration_images(Path(calibration_data))
    scan_base_path(base)  # a base path TF Serving would misread: refused before any write
    with base_path_lock(base):  # one export per base path; what is left of others is stale
        swept = sweep_stale_staging(base)
        existing = scan_base_path(base)
        manifest = _load_manifest(base)

        steps = StepProgress(progress, console)
        with steps.running():
            if swept:
                steps.note(
                    f"removed {len(swept)} staging dir(s) an interrupted export left behind "
                    f"({sum(size for _, size in swept) / 1e6:.1f} MB): "
                    + ", ".join(path.name for path, _ in swept)
                )
            with steps.step(f"load {src.name}"):
                model = load_source(
                    src,
                    inputs=_inputs(inputs),
                    outputs=_outputs(outputs),
                    input_shapes=_input_shapes(input_shapes),
                    signature=signature,
                )
                sha = source_sha256(src)
            for note in model.notes:
                steps.note(note)
            plan = assign_versions(names, manifest, set(existing))
            signature = ([e.info() for e in model.inputs], [e.info() for e in model.outputs])
            up_to_date = _check_overwrites(
                base, plan, existing, manifest, sha, signature, overwrite
            )

            if manifest is None or (overwrite and manifest.source_sha256 != sha):
                previous = manifest
                manifest = VariantsManifest(
                    model_name=checked_name or _check_model_name(base.resolve().name, given=False),
                    source=str(src),
                    source_format=model.source_format,
                    source_sha256=sha,
                    tf_version=tf.__version__,
                    kind=model.kind,
                    inputs=signature[0],
                    outputs=signature[1],
                    variants=list(previous.variants) if previous else [],
                )
            else:
                if (manifest.inputs, manifest.outputs) != signature:
                    # Only with --overwrite or when nothing was published: record what is built now.
                    kept = [
                        f"{r.version} ({r.variant})"
                        for r in manifest.loadable()
                        if r.variant not in names
                    ]
                    if kept:
                        steps.note(
                            f"version(s) {', '.join(kept)} keep the old signature; export them too to match"
                        )
                    manifest.inputs, manifest.outputs, manifest.kind = (
                        signature[0],
                        signature[1],
                        model.kind,
                    )
                if checked_name:
                    manifest.model_name = checked_name
            ctx = BuildContext(model=model, trt=trt)
            feeds: FixedInputs = {}
            reference: dict[str, np.ndarray] = {}
            if any(name not in up_to_date for name in names):
                with steps.step("run the source graph on the fixed validation inputs"):
                    feeds = fixed_inputs(model.inputs)
                    reference = run_reference(model, feeds)
            for name in names:
                version = plan[name]
                if name in up_to_date:
                    steps.note(f"version {version} ({name}): {up_to_date[name]}")
                    record = manifest.by_variant(name)
                    if record is not None and record.status == "ok" and not record.content_sha256:
                        # Written before digests were recorded: from now on it is checked.
                        record.content_sha256 = content_sha256(existing[version])
                        manifest.save(base)
                    continue
                with steps.step(f"version {version}: {name}"):
                    record = _build_one(
                        registry[name], version, base, ctx, feeds, reference, sha, tolerances
                    )
                previous_record = manifest.by_variant(name)
                if (
                    record.status == "skipped"
                    and previous_record
                    and previous_record.status == "ok"
                    and previous_record.source_sha256 == sha
                    and _version_path(base, version).is_dir()
                ):
                    # e.g. --overwrite on a CPU box: a TF-TRT build made on the GPU cannot be redone
                    # here, and dropping it would lose work; keep it and say so.
                    steps.note(
                        f"version {version} ({name}): kept the existing build; cannot rebuild here: {record.reason}"
                    )
                    continue
                if record.status != "ok":
                    # Only reachable with --overwrite: a skipped/failed variant leaves nothing loadable.
                    remove_version(_version_path(base, version))
                manifest.upsert(record)
                manifest.save(base)
            manifest.save(base)
        if progress:
            print_summary(manifest, console)
        return manifest


def _exc_line(exc: Exception) -> str:
    """``Type: first line`` of an error from a builder or a variant run, short enough for the manifest."""
    text = str(exc)
    return f"{type(exc).__name__}: {text.splitlines()[0][:300] if text else ''}"


def _version_path(base: Path, version: int) -> Path:
    """Where a version lives: its existing dir (an ``01`` keeps its name), else ``<base>/<N>``."""
    return scan_base_path(base).get(version, base / str(version))


def _build_one(
    spec: VariantSpec,
    version: int,
    base: Path,
    ctx: BuildContext,
    feeds: FixedInputs,
    reference: dict[str, np.ndarray],
    sha: str,
    tolerances: Mapping[str, Mapping[str, float]] | None,
) -> VariantRecord:
    record = VariantRecord(
        version=version,
        variant=spec.name,
        precision=spec.precision,
        status="ok",
        source_sha256=sha,
        tf_version=tf.__version__,
    )
    target = _version_path(base, version)
    staged = staging_dir(base, spec.name)
    out = staged / "saved_model"
    started = time.perf_counter()
    try:
        try:
            result = spec.build(ctx, out)
        except VariantSkipped as exc:
            record.status, record.reason = "skipped", str(exc)
            log.debug("%s skipped: %s", spec.name, exc)  # the summary prints the reason once
            return record
        except Exception as exc:
            log.debug("building %s failed", spec.name, exc_info=True)
            record.status, record.reason = "failed", f"build failed: {_exc_line(exc)}"
            return record
        finally:
            record.conversion_seconds = round(time.perf_counter() - started, 3)
        record.options = result.options
        record.size_bytes = dir_size(out)
        record.node_count = op_histogram(result.graph_def) if result.graph_def is not None else {}
        tolerance = dict(DEFAULT_TOLERANCES.get(spec.name, DEFAULT_TOLERANCES["weight_quant"]))
        tolerance.update((tolerances or {}).get(spec.name, {}))
        try:
            produced = run_saved_model(out, feeds)
            record.validation = compare_outputs(reference, produced, ctx.model.kind, tolerance)
        except Exception as exc:
            log.debug("running %s failed", spec.name, exc_info=True)
            record.validation = Validation(passed=False, detail=_exc_line(exc), tolerance=tolerance)
        if not record.validation.passed:
            record.status = "failed"
            record.reason = f"validation failed: {record.validation.detail}"
            log.debug("%s failed validation: %s", spec.name, record.validation.detail)
            # A failed variant must not leave a loadable version behind (e.g. an older build).
            remove_version(target)
            return record
        publish(out, target, overwrite=True)  # overwrites were refused during planning
        record.content_sha256 = content_sha256(target)
        return record
    finally:
        shutil.rmtree(staged, ignore_errors=True)
