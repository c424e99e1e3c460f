"""SavedModel -> ONNX for the onnxruntime backend, through tf2onnx's public API.

The signature is traced as a positional ``tf.function`` (so ONNX inputs are named after the
signature keys), frozen with ``tf2onnx.tf_loader.from_function`` and converted with
``tf2onnx.convert.from_graph_def``. In between, eight-bit weights written by Graph Transform
Tool's ``quantize_weights`` (a ``quint8`` Const feeding ``Dequantize``) are rewritten into
``uint8`` Const -> Cast -> Mul -> Add: tf2onnx 1.17 cannot express TF's quantized dtypes
(``Unable to convert type dtype([('quint8', 'u1')])``), while the rewritten arithmetic is
TF's dequantisation (``min + q * (max - min) / 255``, with MIN_FIRST's
min snapped to a whole step) in ops every backend has.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfsuite.atomic import atomic_path, atomic_write_json

__all__ = [
    "ONNX_OPSET",
    "OnnxConversion",
    "convert_in_subprocess",
    "convert_saved_model",
    "dequantize_for_onnx",
]

log = logging.getLogger(__name__)

ONNX_OPSET = 17
SIGNATURE_KEY = "serving_default"


@dataclass
class OnnxConversion:
    """What a conversion did; kept next to the .onnx as ``<name>.onnx.json`` for cached runs."""

    seconds: float
    """Wall time of load + freeze + rewrite + tf2onnx + check."""
    dequantize_rewrites: int
    """quint8 Dequantize nodes rewritten to Cast/Mul/Add."""
    max_abs_error_vs_tf: float | None
    """max |onnxruntime - TF| over float outputs on one seeded batch-1 input (None: not checkable)."""
    opset: int
    tf2onnx: str

    def save(self, onnx_path: Path) -> None:
        atomic_write_json(sidecar(onnx_path), asdict(self), indent=None)

    @classmethod
    def load(cls, onnx_path: Path) -> OnnxConversion | None:
        try:
            return cls(**json.loads(sidecar(onnx_path).read_text()))
        except (OSError, ValueError, TypeError):
            return None


def sidecar(onnx_path: Path) -> Path:
    return onnx_path.with_name(onnx_path.name + ".json")


def _const(graph_def: Any, name: str, value: np.ndarray, device: str) -> None:
    import tensorflow as tf

    node = graph_def.node.add(name=name, op="Const", device=device)
    node.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, shape=value.shape))


def dequantize_for_onnx(graph_def: Any) -> tuple[Any, int]:
    """Replace ``Dequantize(quint8 Const, min Const, max Const)`` by float arithmetic.

    Only the MIN_COMBINED / MIN_FIRST modes that ``quantize_weights`` writes are handled; any
    other Dequantize is left for tf2onnx to report. Returns the new graph and the count.
    """
    import tensorflow as tf

    consts = {n.name: n for n in graph_def.node if n.op == "Const"}

    def const_value(ref: str) -> np.ndarray | None:
        node = consts.get(ref.split(":")[0].lstrip("^"))
        return None if node is None else tf.make_ndarray(node.attr["value"].tensor)

    out = tf.compat.v1.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)
    rewritten = 0
    dropped: set[str] = set()
    for node in graph_def.node:
        if (
            node.op == "Dequantize"
            and node.attr["T"].type == tf.quint8.as_datatype_enum
            and node.attr["mode"].s in (b"MIN_COMBINED", b"MIN_FIRST", b"")
            and len(node.input) == 3
        ):
            q_node = consts.get(node.input[0].split(":")[0])
            lo, hi = const_value(node.input[1]), const_value(node.input[2])
            if (
                q_node is not None
                and lo is not None
                and hi is not None
                and lo.size == 1
                and hi.size == 1
            ):
                q = np.frombuffer(q_node.attr["value"].tensor.tensor_content, dtype=np.uint8)
                if q.size == 0:  # small tensors are stored as int_val instead of raw bytes
                    q = np.asarray(q_node.attr["value"].tensor.int_val, dtype=np.uint8)
                shape = [d.size for d in q_node.attr["value"].tensor.tensor_shape.dim]
                q = (
                    q.reshape(shape)
                    if q.size == int(np.prod(shape))
                    else np.broadcast_to(q, shape).copy()
                )
                lo_f, hi_f = float(lo.reshape(())), float(hi.reshape(()))
                if node.attr["mode"].s == b"MIN_FIRST":
                    # TF's MIN_FIRST: scale = (max-min)*256/255/256, and min snapped to a step.
                    scale = np.float32((hi_f - lo_f) / 255.0)
                    lo_f = float(np.round(lo_f / scale) * scale)
                else:
                    scale = np.float32((hi_f - lo_f) / 255.0)
                base = node.name
                _const(out, f"{base}/onnx_q", q.astype(np.uint8), node.device)
                cast = out.node.add(
                    name=f"{base}/onnx_cast",
                    op="Cast",
                    device=node.device,
                    input=[f"{base}/onnx_q"],
                )
                cast.attr["SrcT"].type = tf.uint8.as_datatype_enum
                cast.attr["DstT"].type = tf.float32.as_datatype_enum
                _const(out, f"{base}/onnx_scale", np.asarray(scale, np.float32), node.device)
                mul = out.node.add(
                    name=f"{base}/onnx_mul",
                    op="Mul",
                    device=node.device,
                    input=[f"{base}/onnx_cast", f"{base}/onnx_scale"],
                )
                mul.attr["T"].type = tf.float32.as_datatype_enum
                _const(out, f"{base}/onnx_min", np.asarray(lo_f, np.float32), node.device)
                add = out.node.add(
                    name=base,
                    op="AddV2",
                    device=node.device,
                    input=[f"{base}/onnx_mul", f"{base}/onnx_min"],
                )
                add.attr["T"].type = tf.float32.as_datatype_enum
                dropped.add(q_node.name)
                rewritten += 1
                continue
        out.node.add().CopyFrom(node)
    if dropped:
        # The quint8 Consts are now unused; tf2onnx would still try (and fail) to convert them.
        still_used = {i.split(":")[0].lstrip("^") for n in out.node for i in n.input}
        keep = [n for n in out.node if not (n.name in dropped and n.name not in still_used)]
        del out.node[:]
        out.node.extend(keep)
    return out, rewritten


def _max_abs_error(fn: Any, names: list[str], specs: Any, onnx_path: Path) -> float | None:
    """Converted vs original on one seeded input, so a wrong conversion cannot pass unnoticed."""
    import onnxruntime as ort
    import tensorflow as tf

    from tfsuite.loadtest.offline.errors import BenchUsageError
    from tfsuite.loadtest.offline.inputs import InputSpec, synthetic_inputs

    inputs = [InputSpec(n, specs[n].dtype.name, tuple(specs[n].shape.as_list())) for n in names]
    try:
        feeds = synthetic_inputs(inputs, 1, {}, seed=1234)
    except BenchUsageError:
        return None  # dynamic dims: the bench's --input-shape is not known here
    expected = {
        k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in feeds.items()}).items()
    }
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = dict(
        zip(
            [o.name.split(":")[0] for o in session.get_outputs()],
            session.run(None, {i.name: feeds[i.name.split(":")[0]] for i in session.get_inputs()}),
            strict=True,
        )
    )
    errors = [
        float(np.max(np.abs(got[k].astype(np.float64) - v.astype(np.float64))))
        for k, v in expected.items()
        if k in got and np.issubdtype(v.dtype, np.floating) and v.size and got[k].shape == v.shape
    ]
    return max(errors) if errors else None


@contextmanager
def _quiet_tensorflow() -> Iterator[None]:
    """tf2onnx freezes through TF1-era APIs; their deprecation notices are not the user's to act on."""
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        tf_logger.setLevel(level)


def convert_saved_model(model_dir: Path, target: Path, opset: int = ONNX_OPSET) -> OnnxConversion:
    """Write ``target`` (.onnx) from the SavedModel's ``serving_default`` and check it against TF.

    Written to a temp name and renamed, so a failed conversion leaves no half file.
    """
    import tensorflow as tf
    import tf2onnx
    from tf2onnx import tf_loader

    start = time.perf_counter()
    loaded = tf.saved_model.load(str(model_dir))
    fn = loaded.signatures[SIGNATURE_KEY]
    specs = fn.structured_input_signature[1]
    names = sorted(specs)
    signature = [tf.TensorSpec(specs[n].shape, specs[n].dtype, name=n) for n in names]

    # Positional wrapper so the ONNX graph's inputs are named after the signature keys.
    @tf.function
    def by_position(*args: Any) -> Any:
        return fn(**dict(zip(names, args, strict=True)))

    concrete = by_position.get_concrete_function(*signature)
    input_names = [t.name for t in concrete.inputs if t.dtype != tf.resource]
    output_names = [t.name for t in concrete.outputs if t.dtype != tf.resource]
    rename = dict(zip(input_names, names, strict=True))
    if isinstance(concrete.structured_outputs, dict):
        rename.update({t.name: key for key, t in concrete.structured_outputs.items()})
    with _quiet_tensorflow(), tf.device("/cpu:0"):
        graph_def = tf_loader.from_function(concrete, input_names, output_names)
    graph_def, rewritten = dequantize_for_onnx(graph_def)
    if rewritten:
        log.info(
            "onnx: rewrote %d quint8 Dequantize nodes into Cast/Mul/Add for tf2onnx", rewritten
        )
    with atomic_path(target) as tmp:
        with _quiet_tensorflow():
            tf2onnx.convert.from_graph_def(
                graph_def,
                name=target.stem,
                input_names=input_names,
                output_names=output_names,
                opset=opset,
                tensors_to_rename=rename,
                output_path=str(tmp),
            )
        error = _max_abs_error(fn, names, specs, tmp)
        result = OnnxConversion(
            seconds=time.perf_counter() - start,
            dequantize_rewrites=rewritten,
            max_abs_error_vs_tf=error,
            opset=opset,
            tf2onnx=tf2onnx.__version__,
        )
        log.info(
            "onnx: %s written in %.1fs, max |onnxruntime - tf| = %s",
            target.name,
            result.seconds,
            error,
        )
        # The sidecar first: a model file without its sidecar is re-converted, not trusted.
        result.save(target)
    return result


def convert_in_subprocess(
    model_dir: Path, target: Path, opset: int = ONNX_OPSET, timeout_s: float = 600.0
) -> OnnxConversion:
    """:func:`convert_saved_model` in a child process killed after ``timeout_s``.

    Isolates the bench from a tf2onnx hang or crash (the child's output goes to this log).
    """
    cmd = [sys.executable, "-m", "tfsuite.loadtest.offline.onnx", str(model_dir), str(target)]
    cmd += ["--opset", str(opset)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout_s, env=env, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"tf2onnx conversion timed out after {timeout_s:g}s") from exc
    for line in (proc.stdout + proc.stderr).splitlines():
        log.info("tf2onnx child: %s", line)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit code {proc.returncode}"
        raise RuntimeError(f"tf2onnx conversion failed in a subprocess: {last}")
    result = OnnxConversion.load(target)
    if result is None or not target.exists():
        raise RuntimeError(f"tf2onnx subprocess exited 0 but wrote no {target.name}")
    return result


if __name__ == "__main__":
    import click

    @click.command()
    @click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
    @click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--opset", type=int, default=ONNX_OPSET, show_default=True)
    def _main(model_dir: Path, target: Path, opset: int) -> None:
        """Convert one SavedModel version dir to ONNX (the bench's subprocess entry)."""
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        convert_saved_model(model_dir, target, opset)

    _main()
