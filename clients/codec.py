"""numpy <-> ``TensorProto``, the one place where tensors are encoded and decoded.

Fast path: numeric arrays travel as raw little-endian bytes in ``tensor_content`` (what
``tf.make_tensor_proto`` also does, minus its per-call overhead); strings use
``string_val``. Decoding accepts both encodings, including the typed ``*_val`` fields
and their "one value fills the whole shape" shorthand. TensorFlow is not imported.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

import tfsuite.protos  # noqa: F401  (light proto import; must precede the pb2 imports)
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

__all__ = [
    "DTYPE_NAMES",
    "CodecError",
    "dtype_from_proto",
    "dtype_to_proto",
    "make_tensor_proto",
    "make_ndarray",
    "encode_inputs",
    "decode_outputs",
]

TensorProto = tensor_pb2.TensorProto


class CodecError(ValueError):
    """A value cannot be turned into a TensorProto (or back)."""


_NP_TO_DT: dict[np.dtype[Any], int] = {
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.float64): types_pb2.DT_DOUBLE,
    np.dtype(np.float16): types_pb2.DT_HALF,
    np.dtype(np.int8): types_pb2.DT_INT8,
    np.dtype(np.int16): types_pb2.DT_INT16,
    np.dtype(np.int32): types_pb2.DT_INT32,
    np.dtype(np.int64): types_pb2.DT_INT64,
    np.dtype(np.uint8): types_pb2.DT_UINT8,
    np.dtype(np.uint16): types_pb2.DT_UINT16,
    np.dtype(np.uint32): types_pb2.DT_UINT32,
    np.dtype(np.uint64): types_pb2.DT_UINT64,
    np.dtype(np.bool_): types_pb2.DT_BOOL,
    np.dtype(np.complex64): types_pb2.DT_COMPLEX64,
    np.dtype(np.complex128): types_pb2.DT_COMPLEX128,
}
_DT_TO_NP: dict[int, np.dtype[Any]] = {dt: npd for npd, dt in _NP_TO_DT.items()}
# Quantized types decode to their storage type.
_DT_TO_NP.update(
    {
        types_pb2.DT_QINT8: np.dtype(np.int8),
        types_pb2.DT_QUINT8: np.dtype(np.uint8),
        types_pb2.DT_QINT16: np.dtype(np.int16),
        types_pb2.DT_QUINT16: np.dtype(np.uint16),
        types_pb2.DT_QINT32: np.dtype(np.int32),
    }
)
_LITTLE = sys.byteorder == "little"

#: DataType enum value -> short name used in manifests and metadata ('float32', 'string', ...)
DTYPE_NAMES: dict[int, str] = {dt: npd.name for dt, npd in _DT_TO_NP.items()}
DTYPE_NAMES[types_pb2.DT_STRING] = "string"
DTYPE_NAMES[types_pb2.DT_BFLOAT16] = "bfloat16"

# Which typed repeated field holds values of each dtype when tensor_content is empty.
_VAL_FIELD: dict[int, str] = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_QINT8: "int_val",
    types_pb2.DT_QUINT8: "int_val",
    types_pb2.DT_QINT16: "int_val",
    types_pb2.DT_QUINT16: "int_val",
    types_pb2.DT_QINT32: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_STRING: "string_val",
    types_pb2.DT_COMPLEX64: "scomplex_val",
    types_pb2.DT_COMPLEX128: "dcomplex_val",
}


def dtype_to_proto(dtype: Any) -> int:
    """numpy dtype (or anything np.dtype accepts; 'string'/bytes/str/object) -> DataType."""
    if isinstance(dtype, str) and dtype in ("string", "bytes", "str"):
        return types_pb2.DT_STRING
    npd = np.dtype(dtype)
    if npd.kind in "SUO":
        return types_pb2.DT_STRING
    try:
        return _NP_TO_DT[npd.newbyteorder("=")]
    except KeyError:
        raise CodecError(f"dtype {npd} has no TensorFlow equivalent") from None


def dtype_from_proto(dt: int) -> np.dtype[Any]:
    """DataType -> numpy dtype (DT_STRING -> object)."""
    if dt == types_pb2.DT_STRING:
        return np.dtype(object)
    try:
        return _DT_TO_NP[dt]
    except KeyError:
        name = types_pb2.DataType.Name(dt) if dt in types_pb2.DataType.values() else str(dt)
        raise CodecError(f"cannot decode a tensor of type {name}") from None


def _as_array(value: Any, dtype: Any | None) -> np.ndarray:
    if isinstance(value, np.ndarray):
        arr = value
    elif isinstance(value, (bytes, str)):
        arr = np.array(value, dtype=object)
    else:
        arr = np.asarray(value)
        if arr.dtype.kind == "U":
            arr = arr.astype(object)
    if dtype is not None:
        want = dtype_to_proto(dtype)
        if want == types_pb2.DT_STRING:
            if arr.dtype.kind not in "SUO":
                raise CodecError(f"cannot send {arr.dtype} values as strings")
        elif arr.dtype != _DT_TO_NP[want]:
            arr = arr.astype(_DT_TO_NP[want])
    return arr


def make_tensor_proto(value: Any, dtype: Any | None = None) -> TensorProto:
    """Encode a numpy array (or nested lists / scalars / bytes) as a TensorProto."""
    arr = _as_array(value, dtype)
    proto = TensorProto()
    dims = proto.tensor_shape.dim
    for size in arr.shape:
        dims.add().size = size
    if arr.dtype.kind in "SUO":
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(_to_bytes(v) for v in arr.reshape(-1).tolist())
        return proto
    proto.dtype = dtype_to_proto(arr.dtype)
    if not _LITTLE or arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    proto.tensor_content = arr.tobytes()  # C order, copies only if not contiguous
    return proto


def _to_bytes(v: Any) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, np.bytes_):
        return bytes(v)
    raise CodecError(f"string tensors take bytes or str, not {type(v).__name__}")


def _shape(proto: TensorProto) -> tuple[int, ...]:
    if proto.tensor_shape.unknown_rank:
        raise CodecError("cannot decode a tensor of unknown rank")
    return tuple(d.size for d in proto.tensor_shape.dim)


def make_ndarray(proto: TensorProto) -> np.ndarray:
    """Decode a TensorProto (``tensor_content`` or typed ``*_val`` fields) into numpy."""
    shape = _shape(proto)
    npd = dtype_from_proto(proto.dtype)
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if proto.tensor_content:
        arr = np.frombuffer(proto.tensor_content, dtype=npd.newbyteorder("<"))
        if arr.size != count:
            raise CodecError(
                f"tensor_content holds {arr.size} values but the shape {list(shape)} needs {count}"
            )
        return arr.reshape(shape)
    dt = proto.dtype
    field = _VAL_FIELD.get(dt)
    if field is None:
        raise CodecError(f"cannot decode a tensor of type {types_pb2.DataType.Name(dt)}")
    values = getattr(proto, field)
    if dt == types_pb2.DT_STRING:
        flat = np.empty(len(values), dtype=object)
        flat[:] = list(values)
    elif dt == types_pb2.DT_HALF:
        flat = np.asarray(values, dtype=np.uint16).view(np.float16)
    elif dt in (types_pb2.DT_COMPLEX64, types_pb2.DT_COMPLEX128):
        pairs = np.asarray(values, dtype=npd.type(0).real.dtype)
        flat = pairs[0::2] + 1j * pairs[1::2]
        flat = flat.astype(npd)
    else:
        flat = np.asarray(values, dtype=npd)
    return _fill(flat, shape, count, npd)


def _fill(flat: np.ndarray, shape: tuple[int, ...], count: int, npd: np.dtype[Any]) -> np.ndarray:
    """TF's rule: fewer values than elements -> the last value repeats (none -> zeros)."""
    if flat.size == count:
        return flat.reshape(shape)
    if flat.size == 0:
        return np.zeros(shape, dtype=npd) if npd != object else np.full(shape, b"", dtype=object)
    if flat.size > count:
        raise CodecError(f"tensor holds {flat.size} values but the shape {list(shape)} needs {count}")
    out = np.empty(count, dtype=npd)
    out[: flat.size] = flat
    out[flat.size :] = flat[-1]
    return out.reshape(shape)


def encode_inputs(
    inputs: Mapping[str, Any], into: Any, dtypes: Mapping[str, Any] | None = None
) -> None:
    """Fill a proto map field (e.g. ``PredictRequest.inputs``) from ``{alias: array}``."""
    for alias, value in inputs.items():
        into[alias].CopyFrom(make_tensor_proto(value, (dtypes or {}).get(alias)))


def decode_outputs(outputs: Mapping[str, TensorProto], only: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """``{alias: TensorProto}`` (e.g. ``PredictResponse.outputs``) -> ``{alias: ndarray}``."""
    keys = list(only) if only is not None else list(outputs.keys())
    return {k: make_ndarray(outputs[k]) for k in keys}
