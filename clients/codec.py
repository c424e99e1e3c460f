"""numpy <-> ``TensorProto``, the one place where tensors are encoded and decoded.

Two encoders, one decoder:

* :func:`make_tensor_proto` builds a ``TensorProto`` message. Numeric arrays travel as raw
  little-endian bytes in ``tensor_content`` (what ``tf.make_tensor_proto`` does, minus its
  per-call overhead); strings use ``string_val``; ``use_content=False`` writes the typed
  ``*_val`` fields instead (for peers that want them, and to test the decoder).
* :func:`tensor_wire` / :func:`predict_request_wire` write the *serialized* bytes directly.
  A client that builds a message and then serializes it copies the pixels three times
  (``tobytes``, into the message, out of it); the wire path copies them once. The bytes
  parse as the very same ``TensorProto`` / ``PredictRequest`` (property-tested).

:func:`make_ndarray` decodes both encodings, including the typed ``*_val`` fields and their
"fewer values than elements: the last one repeats" shorthand. ``DT_BFLOAT16`` decodes to
float32 (numpy has no bfloat16). TensorFlow is not imported.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

import tfsuite.protos  # noqa: F401  (light proto import; must precede the pb2 imports)

# isort: split
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

__all__ = [
    "DTYPE_NAMES",
    "MAX_DIMENSIONS",
    "CodecError",
    "TensorProto",
    "decode_outputs",
    "decoded_nbytes",
    "dtype_from_proto",
    "dtype_name",
    "dtype_to_proto",
    "encode_inputs",
    "make_ndarray",
    "make_tensor_proto",
    "predict_request_wire",
    "tensor_wire",
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
# tensor_content is little-endian on the wire whatever the host is.
_DT_TO_WIRE_NP: dict[int, np.dtype[Any]] = {
    dt: npd.newbyteorder("<") for dt, npd in _DT_TO_NP.items()
}
_LITTLE = sys.byteorder == "little"

#: DataType enum value -> short name used in manifests and metadata ('float32', 'string', ...)
DTYPE_NAMES: dict[int, str] = {dt: npd.name for dt, npd in _DT_TO_NP.items()}
DTYPE_NAMES.update(
    {
        types_pb2.DT_QINT8: "qint8",
        types_pb2.DT_QUINT8: "quint8",
        types_pb2.DT_QINT16: "qint16",
        types_pb2.DT_QUINT16: "quint16",
        types_pb2.DT_QINT32: "qint32",
        types_pb2.DT_STRING: "string",
        types_pb2.DT_BFLOAT16: "bfloat16",
        types_pb2.DT_RESOURCE: "resource",
        types_pb2.DT_VARIANT: "variant",
    }
)

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
    types_pb2.DT_BFLOAT16: "half_val",
    types_pb2.DT_STRING: "string_val",
    types_pb2.DT_COMPLEX64: "scomplex_val",
    types_pb2.DT_COMPLEX128: "dcomplex_val",
}
_COMPLEX = (types_pb2.DT_COMPLEX64, types_pb2.DT_COMPLEX128)


def dtype_to_proto(dtype: Any) -> int:
    """numpy dtype (or anything np.dtype accepts; 'string'/bytes/str/object) -> DataType."""
    if isinstance(dtype, str) and dtype in ("string", "bytes", "str"):
        return types_pb2.DT_STRING
    if isinstance(dtype, str) and dtype == "half":
        return types_pb2.DT_HALF
    try:
        npd = np.dtype(dtype)
    except TypeError:
        raise CodecError(f"{dtype!r} is not a dtype") from None
    if npd.kind in "SUO":
        return types_pb2.DT_STRING
    try:
        return _NP_TO_DT[npd.newbyteorder("=")]
    except KeyError:
        raise CodecError(f"dtype {npd} has no TensorFlow equivalent") from None


def dtype_from_proto(dt: int) -> np.dtype[Any]:
    """DataType -> numpy dtype (DT_STRING -> object, DT_BFLOAT16 -> float32)."""
    if dt == types_pb2.DT_STRING:
        return np.dtype(object)
    if dt == types_pb2.DT_BFLOAT16:
        return np.dtype(np.float32)
    try:
        return _DT_TO_NP[dt]
    except KeyError:
        raise CodecError(f"cannot decode a tensor of type {dtype_name(dt)}") from None


def dtype_name(dt: int) -> str:
    """DataType -> 'float32', 'string', ... (falls back to the enum name, e.g. 'DT_VARIANT')."""
    name = DTYPE_NAMES.get(dt)
    if name is not None:
        return name
    try:
        return types_pb2.DataType.Name(dt)
    except ValueError:
        return str(dt)


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
            if arr.dtype.kind in "SUO":
                raise CodecError(f"cannot send string values as {_DT_TO_NP[want]}")
            arr = arr.astype(_DT_TO_NP[want])
    elif arr.dtype.kind not in "SUO" and arr.dtype.newbyteorder("=") not in _NP_TO_DT:
        raise CodecError(f"dtype {arr.dtype} has no TensorFlow equivalent")
    return arr


def _to_bytes(v: Any) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    raise CodecError(f"string tensors take bytes or str, not {type(v).__name__}")


def _fill_vals(proto: TensorProto, arr: np.ndarray, dt: int) -> None:
    flat = arr.reshape(-1)
    if dt == types_pb2.DT_HALF:
        proto.half_val.extend(flat.view(np.uint16).tolist())
    elif dt in _COMPLEX:
        parts = np.empty(flat.size * 2, dtype=flat.real.dtype)
        parts[0::2] = flat.real
        parts[1::2] = flat.imag
        getattr(proto, _VAL_FIELD[dt]).extend(parts.tolist())
    else:
        getattr(proto, _VAL_FIELD[dt]).extend(flat.tolist())


def make_tensor_proto(
    value: Any, dtype: Any | None = None, *, use_content: bool = True
) -> TensorProto:
    """Encode a numpy array (or nested lists / scalars / bytes / str) as a TensorProto.

    ``use_content=False`` writes numeric values to the typed ``*_val`` fields instead of
    ``tensor_content``. Strings always go to ``string_val`` (str is UTF-8 encoded).
    """
    arr = _as_array(value, dtype)
    proto = TensorProto()
    dims = proto.tensor_shape.dim
    for size in arr.shape:
        dims.add().size = size
    if arr.dtype.kind in "SUO":
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend([_to_bytes(v) for v in arr.reshape(-1).tolist()])
        return proto
    dt = _NP_TO_DT[arr.dtype.newbyteorder("=")]
    proto.dtype = dt
    if not use_content:
        _fill_vals(proto, arr, dt)
        return proto
    if not _LITTLE or arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    proto.tensor_content = arr.tobytes()  # C order
    return proto


# -- wire encoding ------------------------------------------------------------------------
# Field numbers from tensorflow/core/framework/tensor.proto and
# tensorflow_serving/apis/predict.proto (the message classes give the numbers; checked by the
# round-trip tests against the generated parsers).
_TENSOR_CONTENT_TAG = bytes([(TensorProto.TENSOR_CONTENT_FIELD_NUMBER << 3) | 2])
_MAP_KEY_TAG = b"\x0a"  # map entry: key = 1 (length-delimited)
_MAP_VALUE_TAG = b"\x12"  # map entry: value = 2 (length-delimited)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def tensor_wire(value: Any, dtype: Any | None = None) -> list[bytes | memoryview]:
    """The serialized ``TensorProto`` of ``value``, as a list of buffers to concatenate.

    Numeric arrays: a few header bytes (dtype, shape, content tag) then a view of the
    array's own memory, so joining the parts is the only copy of the data. A ready
    ``TensorProto`` (e.g. pre-built by a load generator) is passed through serialized.
    """
    if isinstance(value, TensorProto):
        return [value.SerializeToString()]
    arr = _as_array(value, dtype)
    if arr.dtype.kind in "SUO":
        return [make_tensor_proto(arr).SerializeToString()]
    if not _LITTLE or arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    key = (arr.dtype.char, arr.shape)
    header = _HEADERS.get(key)
    if header is None:
        header = _tensor_header(arr)
        if len(_HEADERS) < _MAX_HEADERS:  # a client sends few distinct shapes; stay bounded
            _HEADERS[key] = header
    if arr.nbytes == 0:
        return [header]
    return [header, memoryview(arr).cast("B")]


#: (dtype char, shape) -> serialized dtype + shape + the tensor_content tag and length.
_HEADERS: dict[tuple[str, tuple[int, ...]], bytes] = {}
_MAX_HEADERS = 4096


def _tensor_header(arr: np.ndarray) -> bytes:
    head = TensorProto()
    dims = head.tensor_shape.dim
    for size in arr.shape:
        dims.add().size = size
    head.dtype = _NP_TO_DT[arr.dtype.newbyteorder("=")]
    header = head.SerializeToString()
    if arr.nbytes == 0:
        return header
    return header + _TENSOR_CONTENT_TAG + _varint(arr.nbytes)


def _length(parts: list[bytes | memoryview]) -> int:
    return sum(p.nbytes if isinstance(p, memoryview) else len(p) for p in parts)


def predict_request_wire(
    head: bytes,
    inputs: Mapping[str, Any],
    dtypes: Mapping[str, Any] | None = None,
    inputs_field: int = 2,
) -> bytes:
    """Serialized ``PredictRequest``: ``head`` (the serialized request without inputs, i.e.
    model_spec and output_filter) followed by one ``inputs`` map entry per tensor.

    Concatenated serialized messages parse as their merge, so ``head`` can be produced by
    the generated class; only the map entries are written by hand. ``inputs_field`` is the
    field number of the map (2 in PredictRequest).
    """
    tag = bytes([(inputs_field << 3) | 2])
    parts: list[bytes | memoryview] = [head]
    for alias, value in inputs.items():
        tensor = tensor_wire(value, (dtypes or {}).get(alias))
        key = alias.encode("utf-8")
        tensor_len = _length(tensor)
        entry_head = _MAP_KEY_TAG + _varint(len(key)) + key + _MAP_VALUE_TAG + _varint(tensor_len)
        parts.append(tag + _varint(len(entry_head) + tensor_len) + entry_head)
        parts.extend(tensor)
    return b"".join(parts)


# -- decoding -----------------------------------------------------------------------------
#: TensorShape's rank limit (``TensorShape::MaxDimensions``).
MAX_DIMENSIONS = 254
_INT64_MAX = 2**63 - 1


def _shape_text(dims: Iterable[int]) -> str:
    """``TensorShapeRep::DebugString``: ``[2,?,3]`` (-1 shows as ``?``)."""
    return "[" + ",".join("?" if d == -1 else str(d) for d in dims) + "]"


def _shape(proto: TensorProto) -> tuple[int, ...]:
    """The tensor's dims, checked as TensorFlow's ``TensorShape::IsValidShape`` checks them
    before ``Tensor::FromProto`` allocates anything (and in its words)."""
    shape = proto.tensor_shape
    if shape.unknown_rank:
        raise CodecError("cannot decode a tensor of unknown rank")
    dims = tuple([d.size for d in shape.dim])
    if len(dims) > MAX_DIMENSIONS:
        raise CodecError(f"Shape {_shape_text(dims)} has too many dimensions")
    count = 1
    for d in dims:
        if d < 0:
            raise CodecError(f"Shape {_shape_text(dims)} is not fully defined")
        count *= d
        if count > _INT64_MAX:
            raise CodecError(
                f"Shape {_shape_text(dims)} is too large (more than 2**63 - 1 entries)"
            )
    return dims


def decoded_nbytes(proto: TensorProto) -> int:
    """Bytes :func:`make_ndarray` would allocate for ``proto``, computed without allocating.

    The shape is checked first (see ``_shape``), so this is what a server calls to bound a
    request before decoding it: a few bytes of dims with no values decode to a full array.
    Strings count a pointer per element plus their bytes.
    """
    count = math.prod(_shape(proto))
    dt = proto.dtype
    if dt == types_pb2.DT_STRING:
        return count * 8 + sum(len(v) for v in proto.string_val)
    if dt == types_pb2.DT_BFLOAT16:
        return count * 4  # decoded to float32
    npd = _DT_TO_NP.get(dt)
    return count * (npd.itemsize if npd is not None else 8)


def make_ndarray(proto: TensorProto) -> np.ndarray:
    """Decode a TensorProto (``tensor_content`` or typed ``*_val`` fields) into numpy.

    ``tensor_content`` arrays are read-only views of the message's bytes (no copy); call
    ``.copy()`` to write to them.
    """
    shape = _shape(proto)
    dt = proto.dtype
    content = proto.tensor_content
    if content:
        if dt == types_pb2.DT_BFLOAT16:
            return _bfloat16(np.frombuffer(content, dtype="<u2"), shape)
        npd = _DT_TO_WIRE_NP.get(dt)
        if npd is None:
            raise CodecError(f"cannot decode a tensor of type {dtype_name(dt)}")
        try:
            arr = np.frombuffer(content, dtype=npd).reshape(shape)
        except ValueError:
            raise CodecError(
                f"tensor_content holds {len(content)} bytes, which does not fit the shape "
                f"{list(shape)} of {dtype_name(dt)}"
            ) from None
        return arr if npd.isnative else arr.astype(npd.newbyteorder("="))
    count = math.prod(shape)
    field = _VAL_FIELD.get(dt)
    if field is None:
        raise CodecError(f"cannot decode a tensor of type {dtype_name(dt)}")
    values = getattr(proto, field)
    npd = dtype_from_proto(dt)
    if dt == types_pb2.DT_STRING:
        flat = np.empty(len(values), dtype=object)
        flat[:] = list(values)
    elif dt == types_pb2.DT_HALF:
        flat = np.asarray(values, dtype=np.uint16).view(np.float16)
    elif dt == types_pb2.DT_BFLOAT16:
        flat = _bfloat16(np.asarray(values, dtype=np.uint16), (len(values),))
        return _fill(flat, shape, count, npd)
    elif dt in _COMPLEX:
        parts = np.asarray(values, dtype=np.float32 if dt == types_pb2.DT_COMPLEX64 else np.float64)
        if parts.size % 2:
            raise CodecError(f"{field} holds an odd number of values ({parts.size})")
        flat = parts.view(npd)  # (re, im) pairs are exactly numpy's complex layout
    else:
        flat = np.asarray(values, dtype=npd)
    return _fill(flat, shape, count, npd)


def _bfloat16(bits: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """bfloat16 is the top half of a float32."""
    return (bits.astype(np.uint32) << 16).view(np.float32).reshape(shape)


def _fill(flat: np.ndarray, shape: tuple[int, ...], count: int, npd: np.dtype[Any]) -> np.ndarray:
    """TF's rule: fewer values than elements -> the last value repeats (none -> zeros)."""
    if flat.size == count:
        return flat.reshape(shape)
    if flat.size == 0:
        return np.zeros(shape, dtype=npd) if npd != object else np.full(shape, b"", dtype=object)
    if flat.size > count:
        raise CodecError(
            f"tensor holds {flat.size} values but the shape {list(shape)} needs {count}"
        )
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


def decode_outputs(
    outputs: Mapping[str, TensorProto], only: Iterable[str] | None = None
) -> dict[str, np.ndarray]:
    """``{alias: TensorProto}`` (e.g. ``PredictResponse.outputs``) -> ``{alias: ndarray}``."""
    if only is None:
        return {k: make_ndarray(v) for k, v in outputs.items()}
    return {k: make_ndarray(outputs[k]) for k in only}


# Kept importable for callers that build shapes themselves.
TensorShapeProto = tensor_shape_pb2.TensorShapeProto
