"""Weight-precision rewrites: eight-bit (``quantize_weights``) and half-precision weights.

``quantize_weights`` is GTT's: every float ``Const`` with at least 1024 elements becomes a
``quint8`` Const plus min/max Consts feeding a ``Dequantize`` (mode ``MIN_FIRST``) that keeps
the old node's name, so consumers are untouched. The native GTT entry point is used when it
exists; :func:`quantize_weights_rewrite` is the suite's own equivalent for builds without it.
As in seed 002, the graph is cleaned and folded first; constants are deliberately not folded
after quantizing: that would turn them back into floats.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from tfsuite.export.graphs import Endpoint
from tfsuite.export.transforms import fold_then_transform

__all__ = [
    "FP16_MIN_ELEMENTS",
    "QUANTIZE_MIN_ELEMENTS",
    "WEIGHT_QUANT_TRANSFORMS",
    "fp16_weights",
    "quantize_weights",
    "quantize_weights_rewrite",
]

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


def _rewrite_float_consts(
    graph_def: tf.compat.v1.GraphDef,
    min_elements: int,
    emit: Callable[[tf.compat.v1.GraphDef, tf.compat.v1.NodeDef, np.ndarray], None],
) -> tf.compat.v1.GraphDef:
    """Copy the graph; every float32 Const of ``min_elements`` or more is replaced by what
    ``emit(out, node, value)`` appends, which must end in a node of the old name (consumers
    stay untouched). Node order is kept, so the result is deterministic."""
    out = tf.compat.v1.GraphDef()
    out.CopyFrom(graph_def)
    del out.node[:]
    for node in graph_def.node:
        if node.op == "Const" and node.attr["dtype"].type == tf.float32.as_datatype_enum:
            value = tf.make_ndarray(node.attr["value"].tensor)
            if value.size >= min_elements:
                emit(out, node, value.astype(np.float32))
                continue
        out.node.add().CopyFrom(node)
    return out


def _const(name: str, value: np.ndarray, dtype: tf.DType, device: str) -> tf.compat.v1.NodeDef:
    node = tf.compat.v1.NodeDef(name=name, op="Const", device=device)
    node.attr["dtype"].type = dtype.as_datatype_enum
    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, dtype=dtype, shape=value.shape))
    return node


def _emit_quint8(out: tf.compat.v1.GraphDef, node: tf.compat.v1.NodeDef, value: np.ndarray) -> None:
    lo, hi = float(value.min()), float(value.max())
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    q = np.clip(np.round((value - lo) / scale), 0, 255).astype(np.uint8)
    base = node.name
    out.node.append(_const(f"{base}_quantized_const", q, tf.quint8, node.device))
    out.node.append(
        _const(f"{base}_quantized_min", np.array(lo, np.float32), tf.float32, node.device)
    )
    out.node.append(
        _const(f"{base}_quantized_max", np.array(hi, np.float32), tf.float32, node.device)
    )
    deq = out.node.add(name=base, op="Dequantize", device=node.device)
    deq.input.extend([f"{base}_quantized_const", f"{base}_quantized_min", f"{base}_quantized_max"])
    deq.attr["T"].type = tf.quint8.as_datatype_enum
    deq.attr["mode"].s = b"MIN_FIRST"


def _emit_half(out: tf.compat.v1.GraphDef, node: tf.compat.v1.NodeDef, value: np.ndarray) -> None:
    half_name = f"{node.name}_fp16"
    out.node.append(_const(half_name, value.astype(np.float16), tf.float16, node.device))
    cast = out.node.add(name=node.name, op="Cast", device=node.device)
    cast.input.append(half_name)
    cast.attr["SrcT"].type = tf.float16.as_datatype_enum
    cast.attr["DstT"].type = tf.float32.as_datatype_enum


def quantize_weights_rewrite(
    graph_def: tf.compat.v1.GraphDef, min_elements: int = QUANTIZE_MIN_ELEMENTS
) -> tf.compat.v1.GraphDef:
    """The suite's own ``quantize_weights`` (same node layout as GTT's)."""
    return _rewrite_float_consts(graph_def, min_elements, _emit_quint8)


def quantize_weights(
    graph_def: tf.compat.v1.GraphDef, inputs: Sequence[Endpoint], outputs: Sequence[Endpoint]
) -> tuple[tf.compat.v1.GraphDef, str]:
    """Eight-bit weights and the engine that produced them (``graph_transforms`` / ``rewrite``)."""
    return fold_then_transform(
        graph_def, inputs, outputs, WEIGHT_QUANT_TRANSFORMS, quantize_weights_rewrite, "rewrite"
    )


def fp16_weights(
    graph_def: tf.compat.v1.GraphDef, min_elements: int = FP16_MIN_ELEMENTS
) -> tf.compat.v1.GraphDef:
    """Float32 Consts stored as half; a ``Cast`` with the old name restores float32 at run time."""
    return _rewrite_float_consts(graph_def, min_elements, _emit_half)
