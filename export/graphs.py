"""Small GraphDef facts the other export modules share: endpoints, tensor names, op histograms.

An :class:`Endpoint` ties a signature key (``image_tensor``) to a tensor in a frozen graph
(``image_tensor:0``) with its dtype and (possibly partly dynamic) shape.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import tensorflow as tf

from tfsuite.export.manifest import TensorSpecInfo

__all__ = [
    "Endpoint",
    "FrozenModel",
    "drop_noop_control_edges",
    "node_name",
    "op_histogram",
    "prune_unreachable",
    "reachable",
    "tensor_name",
]


def node_name(tensor: str) -> str:
    """``"scope/x:0"`` -> ``"scope/x"``; ``"^x"`` -> ``"x"``."""
    return tensor.lstrip("^").split(":")[0]


def tensor_name(name: str) -> str:
    """A node or tensor name as a tensor name (``x`` -> ``x:0``)."""
    return name if ":" in name else f"{name}:0"


@dataclass
class Endpoint:
    """One signature input or output of a frozen graph."""

    key: str
    """Signature key: a clean name, never with ``:0``."""
    tensor: str
    """Tensor name in the frozen graph, e.g. ``image_tensor:0``."""
    dtype: str
    """numpy-style dtype name (``uint8``, ``float32``)."""
    shape: list[int | None] | None
    """Static shape, ``None`` entries dynamic; ``None`` when even the rank is unknown."""

    @property
    def node(self) -> str:
        return node_name(self.tensor)

    def info(self) -> TensorSpecInfo:
        return TensorSpecInfo(name=self.key, dtype=self.dtype, shape=list(self.shape or []))

    def describe(self) -> str:
        dims = (
            "?"
            if self.shape is None
            else "x".join("?" if d is None else str(d) for d in self.shape)
        )
        return f"{self.key} ({self.tensor}, {self.dtype}[{dims}])"


@dataclass
class FrozenModel:
    """A model reduced to what every variant builder needs: one frozen GraphDef + its signature."""

    graph_def: tf.compat.v1.GraphDef
    inputs: list[Endpoint]
    outputs: list[Endpoint]
    source_format: str
    """``frozen_graph``, ``saved_model`` or ``keras``."""
    kind: str = "generic"
    """``detector``, ``classifier`` or ``generic``; chooses the validation metric."""
    notes: list[str] = field(default_factory=list)
    """What was detected or overridden, for the user."""


def op_histogram(graph_def: tf.compat.v1.GraphDef) -> dict[str, int]:
    """Node count by op type, including nodes inside function bodies."""
    counts: Counter[str] = Counter(n.op for n in graph_def.node)
    for fn in graph_def.library.function:
        counts.update(n.op for n in fn.node_def)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def reachable(graph_def: tf.compat.v1.GraphDef, keep: Sequence[str]) -> set[str]:
    """Names of the nodes ``keep`` (node or tensor names) depends on, itself included,
    through data and control edges; names not in the graph are ignored."""
    by_name = {n.name: n for n in graph_def.node}
    seen: set[str] = set()
    stack = [node_name(k) for k in keep]
    while stack:
        name = stack.pop()
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        stack.extend(node_name(i) for i in by_name[name].input)
    return seen


def prune_unreachable(
    graph_def: tf.compat.v1.GraphDef, keep: Sequence[str]
) -> tf.compat.v1.GraphDef:
    """Only the nodes ``keep`` reaches (data and control edges), in the original order."""
    seen = reachable(graph_def, keep)
    out = tf.compat.v1.GraphDef()
    out.CopyFrom(graph_def)
    del out.node[:]
    out.node.extend(n for n in graph_def.node if n.name in seen)
    return out


def drop_noop_control_edges(graph_def: tf.compat.v1.GraphDef) -> int:
    """Remove control inputs from ``NoOp`` nodes, in place; returns how many were removed.

    A frozen TF2 function ends in ``Identity(^NoOp)`` where the NoOp waits for every
    (now constant) variable read: ordering that means nothing once weights are constants, but
    keeps every original weight reachable and so blocks pruning and folding.
    """
    noops = {n.name for n in graph_def.node if n.op == "NoOp"}
    removed = 0
    for node in graph_def.node:
        kept = [i for i in node.input if not (i.startswith("^") and i[1:] in noops)]
        if len(kept) != len(node.input):
            removed += len(node.input) - len(kept)
            del node.input[:]
            node.input.extend(kept)
    return removed
