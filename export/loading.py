"""Loading a source model (frozen ``.pb``, SavedModel dir, Keras file) as one frozen GraphDef.

Every variant is built from the same :class:`~tfsuite.export.graphs.FrozenModel`, so the three
source formats differ only here: a SavedModel signature or a Keras model is frozen first
(variables become constants), a frozen graph has its signature detected.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import tensorflow as tf
from google.protobuf import message, text_format

from tfsuite.export.errors import ExportUsageError
from tfsuite.export.graphs import Endpoint, FrozenModel, drop_noop_control_edges, prune_unreachable
from tfsuite.export.signatures import (
    detect_kind,
    import_checked,
    pin_input_shapes,
    resolve_endpoints,
)
from tfsuite.serving_configs.model_config import parse_version_dir

__all__ = [
    "KERAS_SUFFIXES",
    "freeze_signature",
    "load_source",
    "read_graph_def",
    "source_format",
    "source_sha256",
]

log = logging.getLogger(__name__)

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
_SERVING_KEY = "serving_default"


def source_format(path: Path) -> str:
    """``frozen_graph`` / ``saved_model`` / ``keras``, or a one-line error saying what is wrong."""
    if not path.exists():
        raise ExportUsageError(f"source {str(path)!r} does not exist")
    if path.is_dir():
        if (path / "saved_model.pb").exists() or (path / "saved_model.pbtxt").exists():
            return "saved_model"
        versions = sorted(
            (version, d)
            for d in path.iterdir()
            if (version := parse_version_dir(d.name)) is not None
            and (d / "saved_model.pb").exists()
        )
        if versions:  # a model base path (as tfsuite export writes): point at one of its versions
            raise ExportUsageError(
                f"{str(path)!r} is a model base path, not a SavedModel; give one version directory, "
                f"e.g. {str(versions[-1][1])!r}"
            )
        raise ExportUsageError(
            f"{str(path)!r} is a directory without saved_model.pb: not a SavedModel"
        )
    if path.suffix.lower() in KERAS_SUFFIXES:
        return "keras"
    return "frozen_graph"


SAVED_MODEL_FINGERPRINT = "fingerprint.pb"


def source_sha256(path: Path) -> str:
    """sha256 of a file, or of a directory's relative paths and contents (sorted, so stable).

    A SavedModel's ``fingerprint.pb`` is left out: TensorFlow writes a fresh one on every save
    (it holds a per-save UUID), so two saves of the same model would otherwise never match
    and an idempotent re-export would be refused as "a different source".
    """
    digest = hashlib.sha256()
    files = (
        [path]
        if path.is_file()
        else sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and p.relative_to(path) != Path(SAVED_MODEL_FINGERPRINT)
        )
    )
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def read_graph_def(path: Path) -> tf.compat.v1.GraphDef:
    """A frozen GraphDef from binary (``.pb``) or text (``.pbtxt``) protobuf."""
    graph_def = tf.compat.v1.GraphDef()
    if not path.is_file():
        raise ExportUsageError(f"{str(path)!r} does not exist or is not a file")
    data = path.read_bytes()
    try:
        if path.suffix.lower() == ".pbtxt":
            text_format.Parse(data.decode("utf-8"), graph_def)
        else:
            graph_def.ParseFromString(data)
    except (message.DecodeError, text_format.ParseError, UnicodeDecodeError, ValueError) as exc:
        raise ExportUsageError(
            f"{str(path)!r} is not a GraphDef or SavedModel ({type(exc).__name__})"
        ) from None
    if not graph_def.node or any(not n.op for n in graph_def.node):
        raise ExportUsageError(
            f"{str(path)!r} is not a GraphDef or SavedModel (no graph nodes in it)"
        )
    if any(n.op in {"VariableV2", "VarHandleOp"} for n in graph_def.node):
        raise ExportUsageError(
            f"{str(path)!r} still has variables: freeze it first (tfsuite freeze, or export its SavedModel)"
        )
    return graph_def


def _freeze_function(
    fn: tf.types.experimental.ConcreteFunction,
) -> tf.types.experimental.ConcreteFunction:
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    return convert_variables_to_constants_v2(fn)


def _endpoints_of_function(
    frozen: tf.types.experimental.ConcreteFunction, in_keys: Sequence[str], out_keys: Sequence[str]
) -> tuple[list[Endpoint], list[Endpoint]]:
    ins = [t for t in frozen.inputs if t.dtype != tf.resource]

    def make(key: str, t: tf.Tensor) -> Endpoint:
        shape = None if t.shape.rank is None else t.shape.as_list()
        return Endpoint(key=key, tensor=t.name, dtype=t.dtype.name, shape=shape)

    return [make(k, t) for k, t in zip(in_keys, ins)], [
        make(k, t) for k, t in zip(out_keys, frozen.outputs)
    ]


def freeze_signature(
    path: Path, signature: str | None = None
) -> tuple[tf.compat.v1.GraphDef, list[Endpoint], list[Endpoint]]:
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        raise ExportUsageError(
            f"{str(path)!r} could not be loaded as a SavedModel: {str(exc).splitlines()[0][:200]}"
        ) from None
    key = signature or _SERVING_KEY
    signatures = dict(loaded.signatures)
    if key not in signatures:
        raise ExportUsageError(
            f"SavedModel {str(path)!r} has no signature {key!r}; signatures: {', '.join(signatures) or 'none'} (choose with --signature)"
        )
    fn = signatures[key]
    arg_specs: dict[str, tf.TensorSpec] = fn.structured_input_signature[1]
    frozen = _freeze_function(fn)
    graph_def = frozen.graph.as_graph_def()
    # Placeholders keep the signature's argument names; outputs flatten in sorted-key order.
    placeholders = {n.name for n in graph_def.node if n.op == "Placeholder"}
    ins: list[Endpoint] = []
    for arg_key, spec in sorted(arg_specs.items()):
        name = spec.name or arg_key
        if name not in placeholders:
            raise ExportUsageError(
                f"SavedModel signature input {arg_key!r} was not found after freezing"
            )
        t = frozen.graph.get_tensor_by_name(f"{name}:0")
        ins.append(
            Endpoint(
                arg_key, t.name, t.dtype.name, None if t.shape.rank is None else t.shape.as_list()
            )
        )
    out_keys = (
        sorted(fn.structured_outputs)
        if isinstance(fn.structured_outputs, Mapping)
        else [f"output_{i}" for i in range(len(frozen.outputs))]
    )
    _, outs = _endpoints_of_function(frozen, [], out_keys)
    return graph_def, ins, outs


def _load_keras(path: Path) -> tuple[tf.compat.v1.GraphDef, list[Endpoint], list[Endpoint]]:
    import keras

    try:
        model = keras.models.load_model(str(path), compile=False)
    except Exception as exc:
        raise ExportUsageError(
            f"{str(path)!r} could not be loaded as a Keras model: {str(exc).splitlines()[0][:200]}"
        ) from None
    in_keys = [
        str(getattr(t, "name", f"input_{i}")).split(":")[0].replace("/", "_")
        for i, t in enumerate(model.inputs)
    ]
    specs = [tf.TensorSpec(t.shape, t.dtype, name=k) for k, t in zip(in_keys, model.inputs)]
    if len(specs) == 1:
        fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(specs[0])
    else:
        fn = tf.function(lambda *xs: model(list(xs), training=False)).get_concrete_function(*specs)
    frozen = _freeze_function(fn)
    names = [str(n) for n in (getattr(model, "output_names", None) or [])]
    out_keys = (
        names
        if len(names) == len(frozen.outputs)
        else [f"output_{i}" for i in range(len(frozen.outputs))]
    )
    ins, outs = _endpoints_of_function(frozen, in_keys, out_keys)
    return frozen.graph.as_graph_def(), ins, outs


def _select(endpoints: list[Endpoint], wanted: Sequence[str], what: str) -> list[Endpoint]:
    chosen = []
    for name in wanted:
        match = next((e for e in endpoints if name in {e.key, e.tensor, e.node}), None)
        if match is None:
            raise ExportUsageError(
                f"{what} {name!r} is not in the signature; candidates: {', '.join(e.key for e in endpoints)}"
            )
        chosen.append(match)
    return chosen


def load_source(
    path: str | os.PathLike[str],
    *,
    inputs: Mapping[str, list[int | None] | None] | None = None,
    outputs: Sequence[str] | None = None,
    input_shapes: Mapping[str, list[int | None]] | None = None,
    signature: str | None = None,
) -> FrozenModel:
    """Load any supported source as a frozen model with a chosen, checked signature."""
    src = Path(path)
    fmt = source_format(src)
    notes: list[str] = [f"source: {src} ({fmt})"]
    if fmt == "frozen_graph":
        graph_def = read_graph_def(src)
        if input_shapes:
            pin_input_shapes(graph_def, input_shapes)
        ins, outs = resolve_endpoints(
            graph_def, inputs=inputs, outputs=outputs, notes=notes, pinned=bool(input_shapes)
        )
    else:
        graph_def, ins, outs = (
            freeze_signature(src, signature) if fmt == "saved_model" else _load_keras(src)
        )
        # Frozen TF2 functions keep every old variable read alive through ^NoOp edges.
        drop_noop_control_edges(graph_def)
        graph_def = prune_unreachable(graph_def, [e.node for e in [*ins, *outs]])
        if outputs:
            outs = _select(outs, outputs, "output")
        shapes = dict(input_shapes or {})
        if inputs:
            ins = _select(ins, list(inputs), "input")
            shapes.update({k: v for k, v in inputs.items() if v is not None})
        if shapes:
            by_key = {e.key: e.node for e in ins} | {e.node: e.node for e in ins}
            for key, dims in shapes.items():
                if key not in by_key:
                    raise ExportUsageError(
                        f"--input-shape names {key!r}; inputs: {', '.join(e.key for e in ins)}"
                    )
            pin_input_shapes(graph_def, {by_key[k]: v for k, v in shapes.items()})
            import_checked(graph_def, pinned=True)
            for e in ins:
                dims = shapes.get(e.key, shapes.get(e.node))
                if dims is not None:
                    e.shape = list(dims)
        notes.append(
            f"inputs: {', '.join(e.key for e in ins)}; outputs: {', '.join(e.key for e in outs)}"
        )
    kind = detect_kind(outs)
    notes.append(f"kind: {kind}")
    return FrozenModel(
        graph_def=graph_def, inputs=ins, outputs=outs, source_format=fmt, kind=kind, notes=notes
    )
