"""One loaded SavedModel version and its signatures: the only module that calls TensorFlow.

``Servable.load`` reads the SavedModel with ``tf.saved_model.load`` and, from the same
directory's ``saved_model.pb``, the SignatureDefs (method names, dtypes and shapes, and the
map GetModelMetadata returns). Per signature a ``SignatureRunner`` pre-computes what the
request path needs (dtype and shape per input alias) so that a call is a few dict lookups,
one ``tf.constant`` per input, the concrete function, and ``.numpy()`` per output.

Validation order and messages follow TF Serving's predict_util / classifier / regressor.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import tfsuite.protos  # noqa: F401  (light proto import before the pb2 modules)

# isort: split
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2

from tfsuite.clients.codec import dtype_from_proto
from tfsuite.server.errors import ServingError

__all__ = [
    "CLASSIFY_METHOD",
    "DEFAULT_SIGNATURE",
    "PREDICT_METHOD",
    "REGRESS_METHOD",
    "InputSpec",
    "Servable",
    "SignatureRunner",
    "configure_tensorflow_threads",
    "np_type_name",
]

log = logging.getLogger(__name__)

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
DEFAULT_SIGNATURE = "serving_default"

# TensorFlow's own type names (DataTypeString), used in the runtime's dtype errors.
_TF_TYPE_NAMES: dict[int, str] = {
    types_pb2.DT_FLOAT: "float",
    types_pb2.DT_DOUBLE: "double",
    types_pb2.DT_HALF: "half",
    types_pb2.DT_BFLOAT16: "bfloat16",
    types_pb2.DT_STRING: "string",
    types_pb2.DT_BOOL: "bool",
    types_pb2.DT_INT8: "int8",
    types_pb2.DT_INT16: "int16",
    types_pb2.DT_INT32: "int32",
    types_pb2.DT_INT64: "int64",
    types_pb2.DT_UINT8: "uint8",
    types_pb2.DT_UINT16: "uint16",
    types_pb2.DT_UINT32: "uint32",
    types_pb2.DT_UINT64: "uint64",
    types_pb2.DT_COMPLEX64: "complex64",
    types_pb2.DT_COMPLEX128: "complex128",
}
_NP_TF_NAMES = {"float32": "float", "float64": "double", "float16": "half", "object": "string"}


def np_type_name(dtype: np.dtype[Any]) -> str:
    """A numpy dtype as TF's DataTypeString spells it (``float``, ``double``, ``string``...)."""
    if dtype.kind in "SUO":
        return "string"
    return _NP_TF_NAMES.get(dtype.name, dtype.name)


_threads_configured = False
_threads_lock = threading.Lock()


def configure_tensorflow_threads(intra: int, inter: int) -> None:
    """Apply TF Serving's intra/inter-op parallelism flags (0 = let TensorFlow decide).

    In TF2 these are process-wide and only take effect before TensorFlow's runtime starts,
    so the manager calls this once before the first load; later calls are no-ops.
    """
    global _threads_configured
    with _threads_lock:
        if _threads_configured:
            return
        _threads_configured = True
        if not intra and not inter:
            return
        import tensorflow as tf

        try:
            if intra:
                tf.config.threading.set_intra_op_parallelism_threads(intra)
            if inter:
                tf.config.threading.set_inter_op_parallelism_threads(inter)
        except RuntimeError as err:  # runtime already initialised in this process
            log.warning("cannot apply intra/inter-op parallelism (%s); using current pools", err)


@dataclass(frozen=True, slots=True)
class InputSpec:
    """What one signature input accepts (pre-computed at load time)."""

    alias: str
    index: int
    dtype: int  #: DataType enum
    np_dtype: np.dtype[Any] | None  #: None for dtypes numpy cannot hold (bfloat16)
    dims: tuple[int | None, ...] | None  #: None = unknown rank; None dim = any size

    @property
    def type_name(self) -> str:
        return _TF_TYPE_NAMES.get(self.dtype, types_pb2.DataType.Name(self.dtype))

    def shape_text(self) -> str:
        if self.dims is None:
            return "<unknown>"
        return "[" + ",".join("?" if d is None else str(d) for d in self.dims) + "]"


def _input_spec(alias: str, index: int, info: meta_graph_pb2.TensorInfo) -> InputSpec:
    try:
        npd: np.dtype[Any] | None = dtype_from_proto(info.dtype)
    except ValueError:
        npd = None
    shape = info.tensor_shape
    dims = None if shape.unknown_rank else tuple(None if d.size < 0 else d.size for d in shape.dim)
    return InputSpec(alias, index, info.dtype, npd, dims)


class SignatureRunner:
    """Runs one signature: checks a request's tensors and calls the concrete function."""

    __slots__ = ("_def", "_fn", "_tf_constant", "inputs", "key", "method_name", "output_aliases")

    def __init__(self, key: str, signature_def: meta_graph_pb2.SignatureDef, fn: Any) -> None:
        import tensorflow as tf

        self.key = key
        self._def = signature_def
        self.method_name = signature_def.method_name or PREDICT_METHOD
        aliases = sorted(signature_def.inputs)
        self.inputs: dict[str, InputSpec] = {
            a: _input_spec(a, i, signature_def.inputs[a]) for i, a in enumerate(aliases)
        }
        self.output_aliases: frozenset[str] = frozenset(signature_def.outputs)
        self._fn = fn
        self._tf_constant = tf.constant

    @property
    def signature_def(self) -> meta_graph_pb2.SignatureDef:
        return self._def

    # -- request checks ---------------------------------------------------------------------
    def check_inputs(self, inputs: Mapping[str, np.ndarray]) -> None:
        """Raise TF Serving's INVALID_ARGUMENT for unknown/missing aliases, dtype, shape."""
        specs = self.inputs
        if len(inputs) != len(specs):
            raise ServingError.input_size_mismatch(inputs.keys(), specs.keys())
        for alias, arr in inputs.items():
            spec = specs.get(alias)
            if spec is None:
                raise ServingError.input_alias_not_found(alias, specs.keys())
            npd = spec.np_dtype
            if npd is not None and arr.dtype != npd:
                if not (npd.kind == "O" and arr.dtype.kind in "SUO"):
                    raise ServingError.dtype_mismatch(
                        spec.index, spec.type_name, np_type_name(arr.dtype)
                    )
            dims = spec.dims
            if dims is not None:
                shape = arr.shape
                if len(shape) != len(dims) or any(
                    d is not None and d != s for d, s in zip(dims, shape)
                ):
                    raise ServingError.shape_mismatch(
                        alias, spec.shape_text(), "[" + ",".join(map(str, shape)) + "]"
                    )

    def check_output_filter(self, output_filter: Iterable[str]) -> None:
        seen: set[str] = set()
        for alias in output_filter:
            if alias not in self.output_aliases:
                raise ServingError.output_alias_not_found(alias, self.output_aliases)
            if alias in seen:
                raise ServingError.invalid_argument(f"duplicate output tensor alias: {alias}")
            seen.add(alias)

    # -- execution --------------------------------------------------------------------------
    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Call the signature on already-checked inputs; numpy out (strings as bytes objects)."""
        const = self._tf_constant
        try:
            result = self._fn(**{alias: const(arr) for alias, arr in inputs.items()})
        except ServingError:
            raise
        except Exception as err:  # the runtime's own error (bad values, op failures)
            raise _runtime_error(err) from err
        return {alias: t.numpy() for alias, t in result.items()}


def _runtime_error(err: Exception) -> ServingError:
    """Map a TensorFlow runtime exception to its status code (message: first line of TF's)."""
    import grpc
    import tensorflow as tf

    code = grpc.StatusCode.INTERNAL
    message = str(err)
    if isinstance(err, tf.errors.OpError):
        code = _OP_ERROR_CODES.get(err.error_code, grpc.StatusCode.INTERNAL)
        message = err.message
    elif isinstance(err, (TypeError, ValueError)):
        code = grpc.StatusCode.INVALID_ARGUMENT
    return ServingError(code, _runtime_message(message))


_OP_SUFFIX = re.compile(r"\s*\[Op:[^\]]*\]\s*$")


def _runtime_message(message: str) -> str:
    """The runtime's reason in one line: eager's "Graph execution error" wrapper and the
    Python stack it records ("Detected at node ... defined at") are dropped."""
    kept = []
    for line in message.splitlines():
        text = line.strip()
        if (
            not text
            or text == "Graph execution error:"
            or text.startswith(("Detected at node", 'File "', "<stack traces unavailable>"))
            or (line.startswith("    ") and not text.startswith("[["))
        ):
            continue
        kept.append(text)
    return _OP_SUFFIX.sub("", " ".join(kept)) or message.strip()


def _op_error_codes() -> dict[int, Any]:
    import grpc

    # tf.errors codes are the canonical gRPC status numbers.
    return {c.value[0]: c for c in grpc.StatusCode}


_OP_ERROR_CODES = _op_error_codes()


def read_signature_defs(path: Path, tags: Sequence[str]) -> dict[str, meta_graph_pb2.SignatureDef]:
    """SignatureDefs of the MetaGraph whose tag set equals ``tags``, with TF's loader errors."""
    import grpc
    from google.protobuf import text_format
    from google.protobuf.message import DecodeError

    saved = saved_model_pb2.SavedModel()
    pb, pbtxt = path / "saved_model.pb", path / "saved_model.pbtxt"
    try:
        if pb.is_file():
            saved.ParseFromString(pb.read_bytes())
        elif pbtxt.is_file():
            text_format.Parse(pbtxt.read_text(), saved)
        else:
            raise ServingError(
                grpc.StatusCode.NOT_FOUND,
                "Could not find SavedModel .pb or .pbtxt at supplied export directory path: "
                f"{path}",
            )
    except (DecodeError, text_format.ParseError, UnicodeDecodeError):
        found = pb if pb.is_file() else pbtxt
        raise ServingError(
            grpc.StatusCode.DATA_LOSS, f"Can't parse {found} as binary proto"
        ) from None
    wanted = set(tags)
    for mg in saved.meta_graphs:
        if set(mg.meta_info_def.tags) == wanted:
            return dict(mg.signature_def)
    raise ServingError(
        grpc.StatusCode.NOT_FOUND,
        f"Could not find meta graph def matching supplied tags: {{ {' '.join(sorted(wanted))} }}. "
        "To inspect available tag-sets in the SavedModel, please use the SavedModel CLI: "
        "`saved_model_cli`",
    )


@dataclass
class Servable:
    """One loaded model version; ``runners`` holds every callable signature."""

    name: str
    version: int
    path: Path
    runners: dict[str, SignatureRunner]
    signature_defs: dict[str, meta_graph_pb2.SignatureDef]
    load_seconds: float = 0.0
    #: Keeps the loaded object (and its variables) alive while the version serves.
    _model: Any = None
    _inflight: int = 0
    _idle: threading.Condition = field(default_factory=threading.Condition)
    _closed: bool = False

    @classmethod
    def load(cls, name: str, version: int, path: Path, tags: Sequence[str]) -> Servable:
        """Load ``path`` (a SavedModel dir); raise ServingError with the loader's message."""
        import tensorflow as tf

        start = time.perf_counter()
        try:
            defs = read_signature_defs(path, tags)
            model = tf.saved_model.load(str(path), tags=list(tags))
        except ServingError:
            raise
        except Exception as err:
            raise ServingError.failed_precondition(
                f"Failed to load SavedModel at {path}: {type(err).__name__}: "
                f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}"
            ) from err
        runners = {}
        for key, fn in model.signatures.items():
            sig_def = defs.get(key)
            if sig_def is None:  # a TF2 signature always has its def; be defensive anyway
                continue
            runners[key] = SignatureRunner(key, sig_def, fn)
        return cls(
            name=name,
            version=version,
            path=path,
            runners=runners,
            signature_defs=defs,
            load_seconds=time.perf_counter() - start,
            _model=model,
        )

    def runner(self, signature_name: str) -> SignatureRunner:
        runner = self.runners.get(signature_name or DEFAULT_SIGNATURE)
        if runner is None:
            raise ServingError.signature_not_found(signature_name or DEFAULT_SIGNATURE)
        return runner

    def metadata(self) -> get_model_metadata_pb2.SignatureDefMap:
        out = get_model_metadata_pb2.SignatureDefMap()
        for key, sig in self.signature_defs.items():
            out.signature_def[key].CopyFrom(sig)
        return out

    # -- reference counting: unload waits for in-flight requests -----------------------------
    def acquire(self) -> bool:
        """Count one in-flight request; False if the servable is already unloading."""
        with self._idle:
            if self._closed:
                return False
            self._inflight += 1
            return True

    def release(self) -> None:
        with self._idle:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.notify_all()

    def close(self, timeout: float | None = None) -> bool:
        """Refuse new requests, wait for in-flight ones, drop the model. True if drained."""
        with self._idle:
            self._closed = True
            drained = self._idle.wait_for(lambda: self._inflight == 0, timeout)
        self._model = None
        self.runners = {}
        return drained

    @property
    def inflight(self) -> int:
        return self._inflight
