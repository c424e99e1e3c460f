"""Freezing a traced model into a TF1-style GraphDef (written by :mod:`tfsuite.atomic`).

The example models are traced as ``tf.function``s over ``tf.Variable`` weights; freezing turns
the variables into ``Const`` nodes and keeps only what the named output nodes need, so the
result is a plain GraphDef with one ``Placeholder`` per input and one node per output name.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from tfsuite.export.graphs import reachable

__all__ = ["freeze_concrete_function", "graph_def_bytes"]


def freeze_concrete_function(
    concrete: tf.types.experimental.ConcreteFunction, output_names: Sequence[str]
) -> tf.compat.v1.GraphDef:
    """Variables -> Const, then prune to ``output_names`` (made by ``tf.identity(name=...)``).

    Pruning drops the function's own trailing ``Identity`` outputs, so the output nodes keep
    the names clients look for (``detection_boxes``, ``probabilities``...).
    """
    frozen = convert_variables_to_constants_v2(concrete)
    graph_def = frozen.graph.as_graph_def()
    names = {node.name for node in graph_def.node}
    missing = [name for name in output_names if name not in names]
    if missing:
        raise RuntimeError(f"output nodes {missing} not found in the traced graph")
    return _prune(graph_def, output_names)


def _prune(graph_def: tf.compat.v1.GraphDef, output_names: Sequence[str]) -> tf.compat.v1.GraphDef:
    """Keep the nodes ``output_names`` depend on, in their original order (deterministic)."""
    keep = reachable(graph_def, output_names)
    pruned = tf.compat.v1.GraphDef()
    pruned.versions.CopyFrom(graph_def.versions)
    # No function library: freezing inlined every nested call.
    pruned.node.extend(node for node in graph_def.node if node.name in keep)
    return pruned


def graph_def_bytes(graph_def: tf.compat.v1.GraphDef) -> bytes:
    """Deterministic serialization (map fields such as ``attr`` in sorted key order)."""
    return graph_def.SerializeToString(deterministic=True)
