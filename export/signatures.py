"""Choosing a frozen graph's signature: inputs, outputs, shapes and the model kind.

Inputs are the Placeholders the outputs depend on; outputs are the Object Detection API's
well-known names when present, else the graph's sinks (nodes nothing consumes). The user can
override both (``--inputs name[:shape]``, ``--outputs a,b``) and pin unknown dimensions
(``--input-shape name:1x224x224x3``); dimensions nobody pins stay dynamic.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence

import tensorflow as tf

from tfsuite.export.errors import ExportUsageError
from tfsuite.export.graphs import Endpoint, node_name, reachable, tensor_name

__all__ = [
    "DETECTION_OUTPUTS",
    "detect_inputs",
    "detect_kind",
    "detect_outputs",
    "graph_sinks",
    "import_checked",
    "parse_input_specs",
    "parse_shape",
    "pin_input_shapes",
    "resolve_endpoints",
    "signature_key",
]

log = logging.getLogger(__name__)

#: Object Detection API output names, in the order TF Serving clients expect them.
DETECTION_OUTPUTS = (
    "detection_boxes",
    "detection_scores",
    "detection_classes",
    "num_detections",
    "detection_multiclass_scores",
    "detection_masks",
)

# Ops that end a graph without being a model output (bookkeeping, control, constants).
_NOT_OUTPUTS = {
    "Const",
    "Placeholder",
    "PlaceholderWithDefault",
    "NoOp",
    "Assert",
    "SaveV2",
    "RestoreV2",
    "VarHandleOp",
    "VariableV2",
    "AssignVariableOp",
    "Print",
    "PrintV2",
    "StatelessIf",
}


def parse_shape(text: str) -> list[int | None]:
    """``1x224x224x3`` / ``-1,224,224,3`` / ``?x224x224x3`` -> ``[1, 224, 224, 3]`` (None dynamic)."""
    parts = [p for p in re.split(r"[x,]", text.strip().strip("[]()")) if p.strip()]
    dims: list[int | None] = []
    for part in parts:
        part = part.strip()
        if part in {"?", "-1", "None", "none"}:
            dims.append(None)
        elif part.isdigit():
            dims.append(int(part))
        else:
            raise ExportUsageError(
                f"cannot read shape {text!r}: use e.g. 1x224x224x3 (? or -1 for a dynamic dim)"
            )
    return dims


def parse_input_specs(specs: Iterable[str] | None) -> dict[str, list[int | None] | None]:
    """``["image_tensor:1x300x300x3", "mask"]`` -> ``{"image_tensor": [1,300,300,3], "mask": None}``."""
    result: dict[str, list[int | None] | None] = {}
    for raw in specs or []:
        # "a,b" lists names; "name:1x224x224x3" carries a shape (its commas would be dims)
        items = [raw] if ":" in raw else [s for s in raw.split(",") if s.strip()]
        for item in items:
            name, _, shape = item.strip().partition(":")
            if shape and not shape.isdigit():
                result[name] = parse_shape(shape)
            else:  # "x:0" names a tensor, not a shape
                result[item.strip()] = None
    return result


def signature_key(name: str) -> str:
    """A clean signature key for a node or tensor name: ``scope/x:0`` -> ``x`` ... unless ambiguous."""
    return node_name(name).split("/")[-1] if name else name


def graph_sinks(graph_def: tf.compat.v1.GraphDef) -> list[str]:
    """Nodes whose outputs nothing consumes, minus bookkeeping ops."""
    consumed = {node_name(i) for n in graph_def.node for i in n.input}
    return [n.name for n in graph_def.node if n.name not in consumed and n.op not in _NOT_OUTPUTS]


def detect_outputs(graph_def: tf.compat.v1.GraphDef) -> list[str]:
    names = {n.name for n in graph_def.node}
    well_known = [n for n in DETECTION_OUTPUTS if n in names]
    if well_known:
        return well_known
    return graph_sinks(graph_def)


def detect_inputs(graph_def: tf.compat.v1.GraphDef, outputs: Sequence[str]) -> list[str]:
    needed = reachable(graph_def, outputs)
    return [n.name for n in graph_def.node if n.op == "Placeholder" and n.name in needed]


def pin_input_shapes(
    graph_def: tf.compat.v1.GraphDef, shapes: Mapping[str, list[int | None]]
) -> None:
    """Set the Placeholders' shape attrs in place (the user asked to pin these dims)."""
    by_name = {n.name: n for n in graph_def.node}
    for name, dims in shapes.items():
        node = by_name.get(node_name(name))
        if node is None or node.op != "Placeholder":
            placeholders = [n.name for n in graph_def.node if n.op == "Placeholder"]
            raise ExportUsageError(
                f"--input-shape names {name!r}, which is not an input Placeholder; inputs: {', '.join(placeholders) or 'none'}"
            )
        proto = tf.TensorShape(dims).as_proto()
        node.attr["shape"].shape.CopyFrom(proto)


def _candidates(graph_def: tf.compat.v1.GraphDef, limit: int = 12) -> str:
    sinks = graph_sinks(graph_def)
    others = len(graph_def.node) - len(sinks)
    shown = ", ".join(sinks[:limit]) + (" ..." if len(sinks) > limit else "")
    return f"candidates (graph outputs): {shown or 'none'} (plus {others} inner nodes)"


def _endpoint(graph: tf.Graph, key: str, name: str) -> Endpoint:
    tensor = graph.get_tensor_by_name(tensor_name(name))
    shape = None if tensor.shape.rank is None else tensor.shape.as_list()
    return Endpoint(key=key, tensor=tensor.name, dtype=tensor.dtype.name, shape=shape)


def _unique_keys(names: Sequence[str]) -> list[str]:
    """Short keys (last path element); the full, flattened name where two would collide."""
    keys = [signature_key(n) for n in names]
    if len(set(keys)) == len(keys):
        return keys
    flat = []
    for name in names:
        node, _, index = name.partition(":")
        flat.append(node.replace("/", "_") + (f"_{index}" if index not in ("", "0") else ""))
    return flat


def resolve_endpoints(
    graph_def: tf.compat.v1.GraphDef,
    *,
    inputs: Mapping[str, list[int | None] | None] | None = None,
    outputs: Sequence[str] | None = None,
    notes: list[str] | None = None,
    pinned: bool = False,
) -> tuple[list[Endpoint], list[Endpoint]]:
    """Pick (or check the user's) inputs and outputs of a frozen graph; ``pinned``: the caller
    already set input shapes the user gave (for the error message if they do not fit)."""
    notes = notes if notes is not None else []
    names = {n.name: n for n in graph_def.node}
    if outputs:
        for out in outputs:
            if node_name(out) not in names:
                raise ExportUsageError(
                    f"output {out!r} is not in the graph; {_candidates(graph_def)}"
                )
        out_names = list(outputs)
        notes.append(f"outputs (given): {', '.join(out_names)}")
    else:
        out_names = detect_outputs(graph_def)
        if not out_names:
            raise ExportUsageError("no output detected in the graph; name them with --outputs a,b")
        notes.append(f"outputs (detected): {', '.join(out_names)}")
    if inputs:
        for name in inputs:
            node = names.get(node_name(name))
            if node is None:
                placeholders = [n.name for n in graph_def.node if n.op == "Placeholder"]
                raise ExportUsageError(
                    f"input {name!r} is not in the graph; Placeholders: {', '.join(placeholders) or 'none'}"
                )
        in_names = list(inputs)
        pin_input_shapes(graph_def, {k: v for k, v in inputs.items() if v is not None})
        notes.append(f"inputs (given): {', '.join(in_names)}")
    else:
        in_names = detect_inputs(graph_def, out_names)
        if not in_names:
            raise ExportUsageError(
                "no input detected: the outputs depend on no Placeholder; name the inputs with --inputs name[:shape]"
            )
        notes.append(f"inputs (detected): {', '.join(in_names)}")
    graph = import_checked(
        graph_def, pinned=pinned or any(v is not None for v in (inputs or {}).values())
    )
    ins = [_endpoint(graph, k, n) for k, n in zip(_unique_keys(in_names), in_names)]
    outs = [_endpoint(graph, k, n) for k, n in zip(_unique_keys(out_names), out_names)]
    return ins, outs


def import_checked(graph_def: tf.compat.v1.GraphDef, pinned: bool) -> tf.Graph:
    """Import ``graph_def``; a graph TF cannot import (e.g. a pinned shape that does not fit
    the ops it feeds) is a usage error naming the op, not a traceback."""
    graph = tf.Graph()
    try:
        with graph.as_default():
            tf.graph_util.import_graph_def(graph_def, name="")
    except ValueError as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        node = re.search(r"\{\{node ([^}]+)\}\}", text)
        reason = text.split(" for '")[0] + (f" at node {node.group(1)!r}" if node else "")
        hint = (
            "check the shapes given with --inputs/--input-shape"
            if pinned
            else "is the file a complete frozen graph?"
        )
        raise ExportUsageError(f"the graph does not import: {reason[:200]}; {hint}") from None
    return graph


def detect_kind(outputs: Sequence[Endpoint]) -> str:
    """``detector`` with detection_* outputs; ``classifier`` for one [N, C>=2] float output."""
    if any(o.key.startswith("detection_") for o in outputs):
        return "detector"
    if len(outputs) == 1:
        out = outputs[0]
        if out.dtype.startswith("float") and out.shape is not None and len(out.shape) == 2:
            classes = out.shape[1]
            if classes is not None and classes >= 2:
                return "classifier"
    return "generic"
