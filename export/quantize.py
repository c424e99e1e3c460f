"""Weight-precision rewrites: eight-bit (``quantize_weights``) and half-precision weights.

``quantize_weights`` is GTT's: every float ``Const`` with at least 1024 elements becomes a
``quint8`` Const plus min/max Consts feeding a ``Dequantize`` (mode ``MIN_FIRST``) that keeps
the old node's name, so consumers are untouched. The native GTT entry point is used when it
exists; :func:`quantize_weights_rewrite` is the suite's own equivalent for builds without it.
As in seed 002, the graph is cleaned and folded first; constants are deliberately not folded
after quantizing: that would turn them back into floats.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfsuite.export.batchnorm import fold_fused_batch_norms
from tfsuite.export.errors import ExportError
from tfsuite.export.graphs import Endpoint
from tfsuite.export.transforms import gtt_available, run_gtt

__all__ = [
    "FP16_MIN_ELEMENTS",
    "QUANTIZE_MIN_ELEMENTS",
    "WEIGHT_QUANT_TRANSFORMS",
    "fp16_weights",
    "quantize_weights",
    "quantize_weights_rewrite",
]

log = logging.getLogger(__name__)

#: GTT's default threshold: smaller constants cost more as three nodes than they save.
QUANTIZE_MIN_ELEMENTS = 1024
#: Seed 002's weight-quantization list: clean up and fold first (batch-norm parameters end up
#: inside the conv weights, where they are quantized too), then quantize_weights last.
WEIGHT_QUANT_TRANSFORMS = (
    "remove_nodes(op=Identity, op=CheckNumerics)",
    "strip_unused_nodes",
    "fold_constants(ignore_errors=true)",
    "fold_batch_norms",
    "fold_old_batch_norms",
    f"quantize_weights(minimum_size={QUANTIZE_MIN_ELEMENTS})",
)
#: Scalars and tiny vectors (shapes, axes, epsilons) stay float32.
FP16_MIN_ELEMENTS = 16


def _float_consts(graph_def: tf.compat.v1.GraphDef, min_elements: int) -> list[tuple[int, np.ndarray]]:
    found = []
    for index, node in enumerate(graph_def.node):
        if node.op != "Const" or node.attr["dtype"].type != tf.float32.as_datatype_enum:
            continue
        value = tf.make_ndarray(node.attr["value"].tensor)
        if value.size >= min_elements:
            found.append((index, value))
    return found


def _const(name: str, value: np.ndarray, dtype: tf.DType, device: str) -> tf.compat.v1.NodeDef:
    node = tf.compat.v1.NodeDef(name=name, op="Const", device=device)
    node.attr["dtype"].type = dtype.as_datatype_enum
    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, dtype=dtype, shape=value.shape))
    return node


def quantize_weights_rewrite(graph_def: tf.compat.v1.GraphDef, min_elements: int = QUANTIZE_MIN_ELEMENTS) -> tf.compat.v1.GraphDef:
    """The suite's own ``quantize_weights`` (same node layout as GTT's)."""
    out = tf.compat.v1.GraphDef()
    out.CopyFrom(graph_def)
    replace = dict(_float_consts(graph_def, min_elements))
    del out.node[:]
    for index, node in enumerate(graph_def.node):
        if index not in replace:
            out.node.add().CopyFrom(node)
            continue
        value = replace[index].astype(np.float32)
        lo, hi = float(value.min()), float(value.max())
        scale = (hi - lo) / 255.0 if hi > lo else 1.0
        q = np.clip(np.round((value - lo) / scale), 0, 255).astype(np.uint8)
        base = node.name
        out.node.append(_const(f"{base}_quantized_const", q, tf.quint8, node.device))
        out.node.append(_const(f"{base}_quantized_min", np.array(lo, np.float32), tf.float32, node.device))
        out.node.append(_const(f"{base}_quantized_max", np.array(hi, np.float32), tf.float32, node.device))
        deq = out.node.add(name=base, op="Dequantize", device=node.device)
        deq.input.extend([f"{base}_quantized_const", f"{base}_quantized_min", f"{base}_quantized_max"])
        deq.attr["T"].type = tf.quint8.as_datatype_enum
        deq.attr["mode"].s = b"MIN_FIRST"
    return out


def quantize_weights(
    graph_def: tf.compat.v1.GraphDef, inputs: Sequence[Endpoint], outputs: Sequence[Endpoint]
) -> tuple[tf.compat.v1.GraphDef, str]:
    """Eight-bit weights and the engine that produced them (``graph_transforms`` / ``rewrite``)."""
    graph_def, _ = fold_fused_batch_norms(graph_def, keep=[e.node for e in [*inputs, *outputs]])
    if gtt_available():
        try:
            return run_gtt(graph_def, inputs, outputs, WEIGHT_QUANT_TRANSFORMS), "graph_transforms"
        except ExportError as exc:
            log.warning("GTT quantize_weights failed (%s); using the built-in rewrite", exc)
    return quantize_weights_rewrite(graph_def), "rewrite"


def fp16_weights(graph_def: tf.compat.v1.GraphDef, min_elements: int = FP16_MIN_ELEMENTS) -> tf.compat.v1.GraphDef:
    """Float32 Consts stored as half; a ``Cast`` with the old name restores float32 at run time."""
    out = tf.compat.v1.GraphDef()
    out.CopyFrom(graph_def)
    replace = dict(_float_consts(graph_def, min_elements))
    del out.node[:]
    for index, node in enumerate(graph_def.node):
        if index not in replace:
            out.node.add().CopyFrom(node)
            continue
        half_name = f"{node.name}_fp16"
        out.node.append(_const(half_name, replace[index].astype(np.float16), tf.float16, node.device))
        cast = out.node.add(name=node.name, op="Cast", device=node.device)
        cast.input.append(half_name)
        cast.attr["SrcT"].type = tf.float16.as_datatype_enum
        cast.attr["DstT"].type = tf.float32.as_datatype_enum
    return out
