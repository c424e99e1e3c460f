"""``tfsuite freeze``: a SavedModel signature as a frozen GraphDef (seed 002 step 1, reversed).

Output nodes are renamed after their signature keys (``Identity_1`` -> ``scores``) so the
frozen graph reads like a TF1 export and ``tfsuite export`` detects the same names again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from tfsuite.atomic import atomic_write_bytes
from tfsuite.export.errors import ExportUsageError
from tfsuite.export.graphs import Endpoint, node_name
from tfsuite.export.loading import freeze_signature, source_format
from tfsuite.export.paths import check_output_path

__all__ = ["FreezeResult", "freeze_saved_model", "rename_outputs"]


@dataclass
class FreezeResult:
    path: Path
    graph_def: tf.compat.v1.GraphDef
    inputs: list[str]
    """Input node names (Placeholders)."""
    outputs: list[str]
    """Output node names."""


def rename_outputs(graph_def: tf.compat.v1.GraphDef, outputs: list[Endpoint]) -> list[str]:
    """Rename each output's node to its key where that name is free; returns the node names."""
    taken = {n.name for n in graph_def.node}
    renames: dict[str, str] = {}
    for endpoint in outputs:
        node = endpoint.node
        if endpoint.tensor.endswith(":0") and endpoint.key not in taken and node not in renames:
            renames[node] = endpoint.key
            taken.add(endpoint.key)
    for n in graph_def.node:
        if n.name in renames:
            n.name = renames[n.name]
        for i, inp in enumerate(n.input):
            base = node_name(inp)
            if base in renames:
                n.input[i] = inp.replace(base, renames[base], 1)
    return [renames.get(e.node, e.node) for e in outputs]


def freeze_saved_model(
    saved_model: str | os.PathLike[str],
    out: str | os.PathLike[str],
    signature: str = "serving_default",
    overwrite: bool = False,
) -> FreezeResult:
    src = Path(saved_model)
    if source_format(src) != "saved_model":
        raise ExportUsageError(f"{str(src)!r} is not a SavedModel directory")
    target = check_output_path(Path(out), "--out", directory=False)
    if target.exists() and not overwrite:
        raise ExportUsageError(
            f"--out {str(target)!r} already exists; pass --overwrite to replace it"
        )
    graph_def, ins, outs = freeze_signature(src, signature)
    out_names = rename_outputs(graph_def, outs)
    atomic_write_bytes(target, graph_def.SerializeToString(deterministic=True))
    return FreezeResult(
        path=target, graph_def=graph_def, inputs=[e.node for e in ins], outputs=out_names
    )
