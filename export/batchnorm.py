"""Folding inference-mode ``FusedBatchNorm*`` into the convolution before it.

GTT's ``fold_old_batch_norms`` predates ``FusedBatchNormV3`` (what Keras and TF2 emit), so a
TF2-era frozen graph keeps four float vectors per layer. Folding them into the conv weights
(and one bias) is exact up to float rounding, shrinks the graph, and means ``quantize_weights``
covers the batch-norm parameters too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfsuite.export.graphs import node_name, prune_unreachable

__all__ = ["fold_fused_batch_norms"]

_BN_OPS = {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"}
_CONV_OPS = {"Conv2D", "DepthwiseConv2dNative"}


def _const_value(
    nodes: dict[str, tf.compat.v1.NodeDef], name: str
) -> tuple[str, np.ndarray] | None:
    """Value of a Const, following Identity chains; ``None`` when it is not a constant."""
    node = nodes.get(node_name(name))
    while node is not None and node.op == "Identity":
        node = nodes.get(node_name(node.input[0]))
    if node is None or node.op != "Const":
        return None
    return node.name, tf.make_ndarray(node.attr["value"].tensor)


def fold_fused_batch_norms(
    graph_def: tf.compat.v1.GraphDef, keep: Sequence[str] = ()
) -> tuple[tf.compat.v1.GraphDef, int]:
    """Rewrite conv -> FusedBatchNorm (inference) as conv(folded weights) -> BiasAdd.

    Returns the new graph and how many batch norms were folded. The BiasAdd keeps the batch
    norm's name, so its consumers are unchanged. ``keep`` (the signature's input and output
    nodes) bounds the graph afterwards: whatever they do not reach is dropped.
    """
    out = tf.compat.v1.GraphDef()
    out.CopyFrom(graph_def)
    nodes = {n.name: n for n in out.node}
    consumers: dict[str, list[str]] = {}
    for n in out.node:
        for inp in n.input:
            consumers.setdefault(inp.lstrip("^"), []).append(n.name)
    folded = 0
    new_nodes: list[tf.compat.v1.NodeDef] = []
    for bn in list(out.node):
        if (
            bn.op not in _BN_OPS
            or bn.attr["is_training"].b
            or bn.attr["data_format"].s not in (b"", b"NHWC")
        ):
            continue
        if any(consumers.get(f"{bn.name}:{i}") for i in range(1, 6)):
            continue  # batch statistics are used downstream: not an inference-only BN
        conv = nodes.get(node_name(bn.input[0]))
        if (
            conv is None
            or conv.op not in _CONV_OPS
            or conv.attr["data_format"].s not in (b"", b"NHWC")
        ):
            continue
        if len(consumers.get(conv.name, [])) + len(consumers.get(f"{conv.name}:0", [])) != 1:
            continue
        weights = _const_value(nodes, conv.input[1])
        params = [_const_value(nodes, bn.input[i]) for i in range(1, 5)]
        if weights is None or any(p is None for p in params):
            continue
        scale, offset, mean, variance = (p[1].astype(np.float64) for p in params)  # type: ignore[index]
        eps = bn.attr["epsilon"].f or 1e-3
        factor = scale / np.sqrt(variance + eps)
        w = weights[1].astype(np.float64)
        if conv.op == "DepthwiseConv2dNative":
            kh, kw, cin, mult = w.shape
            w = (w.reshape(kh, kw, cin * mult) * factor).reshape(kh, kw, cin, mult)
        else:
            w = w * factor
        bias = offset - mean * factor
        w_node = tf.compat.v1.NodeDef(
            name=f"{conv.name}/bn_folded_weights", op="Const", device=conv.device
        )
        w_node.attr["dtype"].type = tf.float32.as_datatype_enum
        w_node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(w.astype(np.float32)))
        b_node = tf.compat.v1.NodeDef(
            name=f"{bn.name}/bn_folded_bias", op="Const", device=bn.device
        )
        b_node.attr["dtype"].type = tf.float32.as_datatype_enum
        b_node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(bias.astype(np.float32)))
        conv.input[1] = w_node.name
        name, device, control = bn.name, bn.device, [i for i in bn.input if i.startswith("^")]
        bn.Clear()
        bn.name, bn.op, bn.device = name, "BiasAdd", device
        bn.input.extend([conv.name, b_node.name, *control])
        bn.attr["T"].type = tf.float32.as_datatype_enum
        bn.attr["data_format"].s = b"NHWC"
        new_nodes.extend([w_node, b_node])
        folded += 1
    out.node.extend(new_nodes)
    if folded and keep:
        # The old weights (often behind a frozen ReadVariableOp Identity) are now unreachable.
        out = prune_unreachable(out, keep)
    return out, folded
