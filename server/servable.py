"""One loaded SavedModel version and its signatures: the only module that calls TensorFlow.

As TF Serving does (``SavedModelBundle``), ``Servable.load`` imports the MetaGraph whose tags
match into a ``tf.compat.v1.Session`` of its own graph, restores the variables and runs the
init ops; the SignatureDefs come from the same ``saved_model.pb`` (method names, dtypes, the
map GetModelMetadata returns). A request feeds numpy arrays to the signature's tensor names
through ``Session::MakeCallable`` (one callable per signature and output filter, cached),
which is what TF Serving's ``Session::Run`` does:

- no input shape check against the SignatureDef: only the runtime's own errors come back
  (half_plus_two answers ``x`` of shape ``[1]`` although its TensorInfo says ``[?,1]``);
- TF1 reference variables are restored as they are, with no Python variable objects (so no
  "Unable to create a python object for variable" noise);
- a call costs tens of microseconds of Python, not an eager function call's hundreds
  (``benchmarks/server_core_overhead.py`` measures both).

Validation order and messages (input count, alias, dtype) follow TF Serving's predict_util /
classifier / regressor.
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
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2, saved_model_pb2
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


_session_threads = (0, 0)  # (intra, inter); 0 = let TensorFlow decide
_threads_configured = False
_threads_lock = threading.Lock()


def configure_tensorflow_threads(intra: int, inter: int) -> None:
    """Apply TF Serving's intra/inter-op parallelism flags (0 = let TensorFlow decide).

    They go into every servable's ``Session`` config, as TF Serving's SessionBundleConfig
    does. TensorFlow sizes its process-wide session pools from the first session, so the
    manager calls this once before the first load; later calls are no-ops.
    """
    global _threads_configured, _session_threads
    with _threads_lock:
        if _threads_configured:
            return
        _threads_configured = True
        _session_threads = (max(0, intra), max(0, inter))


def _session_config() -> config_pb2.ConfigProto:
    intra, inter = _session_threads
    return config_pb2.ConfigProto(
        intra_op_parallelism_threads=intra,
        inter_op_parallelism_threads=inter,
        allow_soft_placement=True,
    )


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


def _input_spec(alias: str, index: int, info: meta_graph_pb2.TensorInfo) -> InputSpec:
    try:
        npd: np.dtype[Any] | None = dtype_from_proto(info.dtype)
    except ValueError:
        npd = None
    shape = info.tensor_shape
    dims = None if shape.unknown_rank else tuple(None if d.size < 0 else d.size for d in shape.dim)
    return InputSpec(alias, index, info.dtype, npd, dims)


#: Signature keys that are not callable signatures (TF2's init op rides in the map).
_INIT_OP_SIGNATURE = "__saved_model_init_op"


class SignatureRunner:
    """Runs one signature: checks a request's tensors and feeds them to the Session."""

    __slots__ = (
        "_aliases",
        "_callables",
        "_def",
        "_feeds",
        "_lock",
        "_session",
        "inputs",
        "key",
        "method_name",
        "output_aliases",
    )

    def __init__(self, key: str, signature_def: meta_graph_pb2.SignatureDef, session: Any) -> None:
        self.key = key
        self._def = signature_def
        self.method_name = signature_def.method_name or PREDICT_METHOD
        aliases = sorted(signature_def.inputs)
        self.inputs: dict[str, InputSpec] = {
            a: _input_spec(a, i, signature_def.inputs[a]) for i, a in enumerate(aliases)
        }
        self._aliases = tuple(aliases)
        self._feeds = tuple(signature_def.inputs[a].name for a in aliases)
        self.output_aliases: frozenset[str] = frozenset(signature_def.outputs)
        self._session = session
        #: output aliases (a filter, or all sorted) -> (Session callable, fetch index per alias)
        self._callables: dict[tuple[str, ...], tuple[Any, tuple[int, ...]]] = {}
        self._lock = threading.Lock()

    @property
    def signature_def(self) -> meta_graph_pb2.SignatureDef:
        return self._def

    # -- request checks ---------------------------------------------------------------------
    def check_inputs(self, inputs: Mapping[str, np.ndarray]) -> None:
        """Raise TF Serving's INVALID_ARGUMENT for unknown/missing aliases and dtypes.

        Shapes are not checked, as TF Serving does not check them: the runtime decides.
        """
        specs = self.inputs
        if len(inputs) != len(specs):
            raise ServingError.input_size_mismatch(inputs.keys(), specs.keys())
        for alias, arr in inputs.items():
            spec = specs.get(alias)
            if spec is None:
                raise ServingError.input_alias_not_found(alias, specs.keys())
            npd = spec.np_dtype
            if (
                npd is not None
                and arr.dtype != npd
                and not (npd.kind == "O" and arr.dtype.kind in "SUO")
            ):
                raise ServingError.dtype_mismatch(
                    spec.index, spec.type_name, np_type_name(arr.dtype)
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
    def _callable(self, outputs: tuple[str, ...]) -> tuple[Any, tuple[int, ...]]:
        found = self._callables.get(outputs)
        if found is not None:
            return found
        with self._lock:
            found = self._callables.get(outputs)
            if found is None:
                # Two aliases may name one tensor: fetch it once, hand it to both.
                names = [self._def.outputs[a].name for a in outputs]
                fetches = list(dict.fromkeys(names))
                options = config_pb2.CallableOptions(feed=self._feeds, fetch=fetches)
                fn = self._session._make_callable_from_options(options)  # Session::MakeCallable
                found = (fn, tuple(fetches.index(n) for n in names))
                self._callables[outputs] = found
        return found

    def run(
        self, inputs: Mapping[str, np.ndarray], output_filter: Sequence[str] = ()
    ) -> dict[str, np.ndarray]:
        """Run the signature on already-checked inputs; numpy out (strings as bytes objects).

        ``output_filter`` fetches only those outputs (TF Serving's ``output_filter``); empty
        means all of them.
        """
        outputs = tuple(output_filter) if output_filter else tuple(sorted(self.output_aliases))
        fn, where = self._callable(outputs)
        try:
            values = fn(*[_feedable(inputs[alias]) for alias in self._aliases])
        except ServingError:
            raise
        except Exception as err:  # the runtime's own error (shapes, bad values, op failures)
            raise _runtime_error(err) from err
        return {alias: values[i] for alias, i in zip(outputs, where)}


def _feedable(arr: np.ndarray) -> np.ndarray:
    """numpy as the Session takes it: text (``U``) becomes UTF-8 bytes objects."""
    if arr.dtype.kind == "U":
        return np.char.encode(arr, "utf-8").astype(object)
    return arr


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
    #: The Session holding the restored graph and variables while the version serves.
    _session: Any = None
    _inflight: int = 0
    _idle: threading.Condition = field(default_factory=threading.Condition)
    _closed: bool = False

    @classmethod
    def load(cls, name: str, version: int, path: Path, tags: Sequence[str]) -> Servable:
        """Load ``path`` (a SavedModel dir) into a Session; ServingError with the loader's
        message on failure."""
        import tensorflow as tf
        from tensorflow.python.saved_model import loader_impl

        start = time.perf_counter()
        defs = read_signature_defs(path, tags)
        graph = tf.Graph()
        session = tf.compat.v1.Session(graph=graph, config=_session_config())
        try:
            with graph.as_default():
                loader_impl.SavedModelLoader(str(path)).load(session, list(tags))
            graph.finalize()  # nothing may add ops after the load (requests only feed/fetch)
        except Exception as err:
            session.close()
            text = str(err).strip()
            raise ServingError.failed_precondition(
                f"Failed to load SavedModel at {path}: {type(err).__name__}: "
                f"{text.splitlines()[0] if text else ''}"
            ) from err
        runners = {}
        for key, sig_def in defs.items():
            if key == _INIT_OP_SIGNATURE:
                continue
            dense = all(
                t.WhichOneof("encoding") == "name"
                for t in (*sig_def.inputs.values(), *sig_def.outputs.values())
            )
            if not dense:
                log.warning(
                    "servable %s version %d: signature %s has sparse or composite tensors; "
                    "it is not served",
                    name,
                    version,
                    key,
                )
                continue
            runners[key] = SignatureRunner(key, sig_def, session)
        return cls(
            name=name,
            version=version,
            path=path,
            runners=runners,
            signature_defs=defs,
            load_seconds=time.perf_counter() - start,
            _session=session,
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
        self.runners = {}
        if self._session is not None:
            self._session.close()
            self._session = None
        return drained

    @property
    def inflight(self) -> int:
        return self._inflight
