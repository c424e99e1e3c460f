"""Freezing a traced model into a TF1-style GraphDef and writing files atomically.

The example models are traced as ``tf.function``s over ``tf.Variable`` weights; freezing turns
the variables into ``Const`` nodes and keeps only what the named output nodes need, so the
result is a plain GraphDef with one ``Placeholder`` per input and one node per output name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

__all__ = ["atomic_write_bytes", "atomic_write_dir", "freeze_concrete_function", "graph_def_bytes"]


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
    by_name = {node.name: node for node in graph_def.node}
    keep: set[str] = set()
    stack = list(output_names)
    while stack:
        name = stack.pop()
        if name in keep:
            continue
        keep.add(name)
        for ref in by_name[name].input:
            # "^ctrl", "node:1" -> "node"
            stack.append(ref.lstrip("^").split(":")[0])
    pruned = tf.compat.v1.GraphDef()
    pruned.versions.CopyFrom(graph_def.versions)
    # No function library: freezing inlined every nested call.
    pruned.node.extend(node for node in graph_def.node if node.name in keep)
    return pruned


def graph_def_bytes(graph_def: tf.compat.v1.GraphDef) -> bytes:
    """Deterministic serialization (map fields such as ``attr`` in sorted key order)."""
    return graph_def.SerializeToString(deterministic=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file next to ``path``, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; servers in containers must read it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_dir(path: Path, write: Callable[[Path], None]) -> None:
    """Let ``write`` fill a temp dir next to ``path``, then swap it in place of any old ``path``.

    A directory cannot be replaced by one ``rename``; the old one is moved aside first and
    removed only after the new one is in place, so ``path`` is complete whenever it exists.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    old: Path | None = None
    try:
        write(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists() and (old / path.name).exists():
            os.replace(old / path.name, path)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
