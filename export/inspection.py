"""``tfsuite inspect``: what a SavedModel or frozen graph offers, like ``saved_model_cli show --all``.

SavedModels are read from ``saved_model.pb`` directly (no TF runtime load), so inspecting a
large or GPU-only (TF-TRT) model works anywhere.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from tfsuite.export.errors import ExportUsageError
from tfsuite.export.graphs import Endpoint, op_histogram
from tfsuite.export.loading import read_graph_def, source_format
from tfsuite.export.manifest import TensorSpecInfo
from tfsuite.export.report import format_size
from tfsuite.export.saving import dir_size
from tfsuite.export.signatures import detect_kind, resolve_endpoints

__all__ = ["ModelInfo", "SignatureInfo", "inspect_model", "render_inspection"]


class SignatureInfo(BaseModel):
    key: str
    method_name: str = ""
    tags: list[str] = Field(
        default_factory=list, description="MetaGraph tag-set holding the signature."
    )
    inputs: list[TensorSpecInfo] = Field(default_factory=list)
    outputs: list[TensorSpecInfo] = Field(default_factory=list)
    tensor_names: dict[str, str] = Field(
        default_factory=dict, description="signature key -> graph tensor name"
    )


class ModelInfo(BaseModel):
    """What ``tfsuite inspect --json`` prints; fields are only ever added (``schema_version``)."""

    schema_version: int = 1
    path: str
    format: str = Field(description="'saved_model' or 'frozen_graph'")
    size_bytes: int
    kind: str = "generic"
    signatures: list[SignatureInfo] = Field(default_factory=list)
    node_count: int = 0
    op_histogram: dict[str, int] = Field(default_factory=dict)


def _spec(key: str, info: meta_graph_pb2.TensorInfo) -> TensorSpecInfo:
    shape = tf.TensorShape(info.tensor_shape)
    dims = [] if shape.rank is None else shape.as_list()  # unknown rank reads as [] in JSON
    return TensorSpecInfo(
        name=key, dtype=tf.dtypes.as_dtype(info.dtype).name if info.dtype else "unknown", shape=dims
    )


def _saved_model_info(path: Path) -> ModelInfo:
    proto = saved_model_pb2.SavedModel()
    pb = path / "saved_model.pb"
    if not pb.exists():
        raise ExportUsageError(
            f"{str(path)!r} holds saved_model.pbtxt only; inspect supports binary SavedModels"
        )
    try:
        proto.ParseFromString(pb.read_bytes())
    except Exception:
        raise ExportUsageError(f"{str(pb)!r} is not a valid SavedModel protobuf") from None
    signatures: list[SignatureInfo] = []
    histogram: dict[str, int] = {}
    nodes = 0
    for meta in proto.meta_graphs:
        tags = list(meta.meta_info_def.tags)
        for key, sig in sorted(meta.signature_def.items()):
            if key.startswith("__"):  # internal (e.g. __saved_model_init_op)
                continue
            signatures.append(
                SignatureInfo(
                    key=key,
                    method_name=sig.method_name,
                    tags=tags,
                    inputs=[_spec(k, v) for k, v in sorted(sig.inputs.items())],
                    outputs=[_spec(k, v) for k, v in sorted(sig.outputs.items())],
                    tensor_names={
                        **{k: v.name for k, v in sig.inputs.items()},
                        **{k: v.name for k, v in sig.outputs.items()},
                    },
                )
            )
        for op, count in op_histogram(meta.graph_def).items():
            histogram[op] = histogram.get(op, 0) + count
        nodes += len(meta.graph_def.node)
    kinds = [
        detect_kind([_as_endpoint(o) for o in s.outputs])
        for s in signatures
        if s.key == "serving_default"
    ]
    return ModelInfo(
        path=str(path),
        format="saved_model",
        size_bytes=dir_size(path),
        kind=kinds[0] if kinds else "generic",
        signatures=signatures,
        node_count=nodes,
        op_histogram=dict(sorted(histogram.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


def _as_endpoint(info: TensorSpecInfo) -> Endpoint:
    return Endpoint(key=info.name, tensor=info.name, dtype=info.dtype, shape=info.shape or None)


def _frozen_info(path: Path) -> ModelInfo:
    graph_def = read_graph_def(path)
    ins, outs = resolve_endpoints(graph_def)
    sig = SignatureInfo(
        key="(detected)",
        method_name="",
        inputs=[e.info() for e in ins],
        outputs=[e.info() for e in outs],
        tensor_names={e.key: e.tensor for e in [*ins, *outs]},
    )
    return ModelInfo(
        path=str(path),
        format="frozen_graph",
        size_bytes=path.stat().st_size,
        kind=detect_kind(outs),
        signatures=[sig],
        node_count=len(graph_def.node),
        op_histogram=op_histogram(graph_def),
    )


def inspect_model(path: str | Path) -> ModelInfo:
    src = Path(path)
    fmt = source_format(src)
    if fmt == "saved_model":
        return _saved_model_info(src)
    if fmt == "keras":
        raise ExportUsageError(
            f"{str(src)!r} is a Keras file; export it first (tfsuite export) and inspect a version dir"
        )
    return _frozen_info(src)


def _dims(shape: list[int | None] | None) -> str:
    if shape is None:
        return "unknown_rank"
    return "(" + ", ".join("-1" if d is None else str(d) for d in shape) + ")"


def _dt(dtype: str) -> str:
    """``float32`` -> ``DT_FLOAT``: the enum names saved_model_cli prints."""
    try:
        return types_pb2.DataType.Name(tf.dtypes.as_dtype(dtype).as_datatype_enum)
    except (TypeError, ValueError):
        return dtype


def _signature_lines(sig: SignatureInfo, holder: str) -> list[str]:
    """One signature laid out as ``saved_model_cli show --all`` does, so the two read alike."""
    lines = [f"signature_def[{sig.key!r}]:"]
    for label, word, specs in (
        ("inputs", "input(s)", sig.inputs),
        ("outputs", "output(s)", sig.outputs),
    ):
        lines.append(f"  {holder} contains the following {word}:")
        for spec in specs:
            lines += [
                f"    {label}[{spec.name!r}] tensor_info:",
                f"        dtype: {_dt(spec.dtype)}",
                f"        shape: {_dims(spec.shape)}",
                f"        name: {sig.tensor_names.get(spec.name, '')}",
            ]
    if sig.method_name:
        lines.append(f"  Method name is: {sig.method_name}")
    return lines


def render_inspection(info: ModelInfo, console: Console | None = None) -> None:
    console = console or Console()
    console.print(
        f"[bold]{info.path}[/] - {info.format}, {info.kind}, {format_size(info.size_bytes)}, {info.node_count} nodes"
    )
    lines: list[str] = []
    if info.format == "frozen_graph":
        lines.append(
            "Frozen graph: detected inputs/outputs (tfsuite export makes them signature_def['serving_default']):"
        )
    seen_tags: list[str] | None = None
    for sig in info.signatures:
        if info.format == "saved_model" and sig.tags != seen_tags:
            seen_tags = sig.tags
            lines += [
                "",
                f"MetaGraphDef with tag-set: {', '.join(repr(t) for t in sig.tags)} contains the following SignatureDefs:",
            ]
        holder = (
            "The given SavedModel SignatureDef"
            if info.format == "saved_model"
            else "The frozen graph"
        )
        lines += ["", *_signature_lines(sig, holder)]
    lines.append("")
    # Plain text: tensor names hold brackets rich would take for markup, and long lines must
    # not be re-wrapped (people grep and diff this output).
    console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)
    table = Table(title="ops")
    table.add_column("op")
    table.add_column("count", justify="right")
    for op, count in list(info.op_histogram.items())[:25]:
        table.add_row(op, str(count))
    if len(info.op_histogram) > 25:
        table.add_row("...", str(sum(list(info.op_histogram.values())[25:])))
    console.print(table)
