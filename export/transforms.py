"""Graph rewrites through the Graph Transform Tool's native entry point, with fallbacks.

TF 2.x dropped GTT's Python wrapper, but the compiled
``tensorflow.python.util._pywrap_transform_graph.TransformGraphWithStringInputs(graph_bytes,
inputs, outputs, transforms) -> bytes`` still ships (verified on TF 2.21). It is internal, so
it is probed, and every caller has a fallback that does not need it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import tensorflow as tf

from tfsuite.export.batchnorm import fold_fused_batch_norms
from tfsuite.export.errors import ExportError
from tfsuite.export.graphs import Endpoint

__all__ = [
    "OPTIMIZE_TRANSFORMS",
    "fold_then_transform",
    "gtt_available",
    "optimize_graph",
    "restore_placeholders",
    "run_gtt",
]

log = logging.getLogger(__name__)

#: Seed 002's list: remove Identity, merge duplicates, strip unused, fold constants, fold batch norms.
OPTIMIZE_TRANSFORMS = (
    "remove_nodes(op=Identity, op=CheckNumerics)",
    "merge_duplicate_nodes",
    "strip_unused_nodes",
    "fold_constants(ignore_errors=true)",
    "fold_batch_norms",
    "fold_old_batch_norms",
)

TransformFn = Callable[[bytes, str, str, str], bytes]


def _native() -> TransformFn | None:
    try:
        from tensorflow.python.util import _pywrap_transform_graph
    except ImportError:
        return None
    return getattr(_pywrap_transform_graph, "TransformGraphWithStringInputs", None)


def gtt_available() -> bool:
    return _native() is not None


def run_gtt(
    graph_def: tf.compat.v1.GraphDef,
    inputs: Sequence[Endpoint],
    outputs: Sequence[Endpoint],
    transforms: Sequence[str],
) -> tf.compat.v1.GraphDef:
    """Apply GTT transforms; raises ``ExportError`` when the entry point is missing or fails."""
    native = _native()
    if native is None:
        raise ExportError("the Graph Transform Tool entry point is not in this TensorFlow build")
    try:
        out = native(
            graph_def.SerializeToString(),
            ",".join(e.node for e in inputs),
            ",".join(e.node for e in outputs),
            " ".join(transforms),
        )
    except (ValueError, RuntimeError) as exc:
        raise ExportError(f"graph transform failed: {exc}") from exc
    result = tf.compat.v1.GraphDef()
    result.ParseFromString(out)
    return restore_placeholders(graph_def, result)


def restore_placeholders(
    original: tf.compat.v1.GraphDef, rewritten: tf.compat.v1.GraphDef
) -> tf.compat.v1.GraphDef:
    """Keep the inputs exactly as they were: strip_unused_nodes may rewrite Placeholder attrs."""
    before = {n.name: n for n in original.node if n.op == "Placeholder"}
    for node in rewritten.node:
        if node.name in before:
            node.attr.clear()
            for key, value in before[node.name].attr.items():
                node.attr[key].CopyFrom(value)
    return rewritten


def _fallback_optimize(
    graph_def: tf.compat.v1.GraphDef, outputs: Sequence[Endpoint]
) -> tf.compat.v1.GraphDef:
    """Without GTT: drop training-only nodes and what the outputs do not need."""
    keep = [e.node for e in outputs]
    pruned = tf.compat.v1.graph_util.remove_training_nodes(graph_def, protected_nodes=keep)
    return tf.compat.v1.graph_util.extract_sub_graph(pruned, keep)


def fold_then_transform(
    graph_def: tf.compat.v1.GraphDef,
    inputs: Sequence[Endpoint],
    outputs: Sequence[Endpoint],
    transforms: Sequence[str],
    fallback: Callable[[tf.compat.v1.GraphDef], tf.compat.v1.GraphDef],
    fallback_engine: str,
) -> tuple[tf.compat.v1.GraphDef, str]:
    """Fold FusedBatchNormV3 (GTT only knows the older ops), then GTT's ``transforms``, or
    ``fallback`` where GTT is missing or fails; returns the graph and the engine used."""
    graph_def, _ = fold_fused_batch_norms(graph_def, keep=[e.node for e in [*inputs, *outputs]])
    if gtt_available():
        try:
            return run_gtt(graph_def, inputs, outputs, transforms), "graph_transforms"
        except ExportError as exc:
            log.warning(
                "graph transform failed (%s); using the built-in %s instead", exc, fallback_engine
            )
    return fallback(graph_def), fallback_engine


def optimize_graph(
    graph_def: tf.compat.v1.GraphDef, inputs: Sequence[Endpoint], outputs: Sequence[Endpoint]
) -> tuple[tf.compat.v1.GraphDef, str]:
    """The ``optimized`` variant's graph and the engine that produced it."""
    return fold_then_transform(
        graph_def,
        inputs,
        outputs,
        OPTIMIZE_TRANSFORMS,
        lambda g: _fallback_optimize(g, outputs),
        "fallback",
    )
