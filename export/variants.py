"""The variant builders: one :class:`VariantSpec` per variant name.

A builder gets the frozen source model and an empty directory and writes a SavedModel there
(or raises :class:`VariantSkipped` with the reason). Publishing, validation and numbering are
the caller's (:mod:`tfsuite.export.api`), so builders stay small and testable one by one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tensorflow as tf

from tfsuite.export.graphs import FrozenModel
from tfsuite.export.quantize import WEIGHT_QUANT_TRANSFORMS, fp16_weights, quantize_weights
from tfsuite.export.saving import write_saved_model
from tfsuite.export.transforms import OPTIMIZE_TRANSFORMS, optimize_graph
from tfsuite.export.trt import TRT_PRECISIONS, TensorRTUnavailable, TrtOptions, build_trt

__all__ = [
    "DEFAULT_VARIANTS",
    "VARIANTS",
    "BuildContext",
    "BuildResult",
    "VariantSkipped",
    "VariantSpec",
]

DEFAULT_VARIANTS = ("original", "weight_quant", "trt_fp16", "trt_int8")


class VariantSkipped(Exception):
    """The variant cannot be built here; ``str()`` says why and what to do instead."""


@dataclass
class BuildContext:
    """Everything a builder may use."""

    model: FrozenModel
    trt: TrtOptions = field(default_factory=TrtOptions)


@dataclass
class BuildResult:
    """What a builder reports besides the SavedModel it wrote."""

    graph_def: tf.compat.v1.GraphDef | None = None
    """The graph that was saved (node counts); ``None`` when the builder cannot tell."""
    options: dict[str, Any] = field(default_factory=dict)


Builder = Callable[[BuildContext, Path], BuildResult]


@dataclass(frozen=True)
class VariantSpec:
    name: str
    precision: str
    build: Builder
    description: str


def _save(
    ctx: BuildContext, graph_def: tf.compat.v1.GraphDef, out: Path, **options: Any
) -> BuildResult:
    write_saved_model(graph_def, ctx.model.inputs, ctx.model.outputs, out)
    return BuildResult(graph_def=graph_def, options=options)


def _original(ctx: BuildContext, out: Path) -> BuildResult:
    return _save(ctx, ctx.model.graph_def, out)


def _optimized(ctx: BuildContext, out: Path) -> BuildResult:
    graph_def, engine = optimize_graph(ctx.model.graph_def, ctx.model.inputs, ctx.model.outputs)
    return _save(
        ctx,
        graph_def,
        out,
        engine=engine,
        transforms=list(OPTIMIZE_TRANSFORMS)
        if engine == "graph_transforms"
        else ["prune (built-in)"],
    )


def _weight_quant(ctx: BuildContext, out: Path) -> BuildResult:
    graph_def, engine = quantize_weights(ctx.model.graph_def, ctx.model.inputs, ctx.model.outputs)
    transforms = (
        list(WEIGHT_QUANT_TRANSFORMS)
        if engine == "graph_transforms"
        else ["quantize_weights (built-in rewrite)"]
    )
    return _save(ctx, graph_def, out, engine=engine, transforms=transforms)


def _fp16(ctx: BuildContext, out: Path) -> BuildResult:
    return _save(ctx, fp16_weights(ctx.model.graph_def), out)


def _trt(variant: str) -> Builder:
    def build(ctx: BuildContext, out: Path) -> BuildResult:
        # TF-TRT converts a SavedModel: give it the fp32 original, next to the output.
        with tempfile.TemporaryDirectory(prefix=".tfsuite-trt-src-", dir=out.parent) as tmp:
            src = Path(tmp) / "saved_model"
            write_saved_model(ctx.model.graph_def, ctx.model.inputs, ctx.model.outputs, src)
            try:
                options = build_trt(variant, src, out, ctx.model.inputs, ctx.trt)
            except TensorRTUnavailable as exc:
                raise VariantSkipped(str(exc)) from None
        return BuildResult(graph_def=None, options=options)

    return build


VARIANTS: dict[str, VariantSpec] = {
    spec.name: spec
    for spec in (
        VariantSpec("original", "fp32", _original, "the source graph as an fp32 SavedModel"),
        VariantSpec(
            "weight_quant",
            "int8-weights",
            _weight_quant,
            "quantize_weights: 8-bit weights, float compute",
        ),
        VariantSpec("trt_fp16", "fp16", _trt("trt_fp16"), "TF-TRT FP16 engines"),
        VariantSpec("trt_int8", "int8", _trt("trt_int8"), "TF-TRT INT8 engines (calibrated)"),
        VariantSpec(
            "optimized",
            "fp32",
            _optimized,
            "GTT: remove Identity, merge duplicates, strip unused, fold constants and batch norms",
        ),
        VariantSpec(
            "fp16_weights", "fp16-weights", _fp16, "weights stored as half, cast to float at load"
        ),
        VariantSpec("trt_fp32", "fp32", _trt("trt_fp32"), "TF-TRT FP32 engines"),
    )
}
assert set(TRT_PRECISIONS) <= set(VARIANTS)
