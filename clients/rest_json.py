"""numpy <-> TF Serving's REST JSON (row "instances" and columnar "inputs" formats).

Binary strings travel as ``{"b64": "..."}`` both ways; numeric arrays are written by
orjson straight from numpy memory. Answers carry no dtypes, so decoding takes them from the
signature (GetModelMetadata), which keeps float32 outputs float32 as over gRPC.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import orjson

from tfsuite.clients.codec import CodecError
from tfsuite.clients.specs import SignatureSpec, TensorSpec

__all__ = ["Format", "decode_predict_body", "encode_predict_body"]

Format = Literal["columnar", "row"]

_NUMPY_JSON = {"b", "i", "u", "f"}


def _jsonable(value: Any) -> Any:
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    if arr.dtype.kind == "U":
        arr = arr.astype(object)
    if arr.dtype.kind in "SO":
        return _strings(arr)
    if arr.dtype.kind not in _NUMPY_JSON:
        raise CodecError(f"{arr.dtype} tensors cannot be sent over REST (JSON has no such type)")
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    return arr


def _strings(arr: np.ndarray) -> Any:
    def one(v: Any) -> Any:
        if isinstance(v, bytes):
            return {"b64": base64.b64encode(v).decode("ascii")}
        if isinstance(v, str):
            return v
        raise CodecError(f"string tensors take bytes or str, not {type(v).__name__}")

    if arr.ndim == 0:
        return one(arr.item())
    return np.vectorize(one, otypes=[object])(arr).tolist()


def encode_predict_body(
    inputs: Mapping[str, Any], signature: str | None, fmt: Format = "columnar"
) -> bytes:
    body: dict[str, Any] = {}
    if signature:
        body["signature_name"] = signature
    encoded = {alias: _jsonable(v) for alias, v in inputs.items()}
    if fmt == "columnar":
        body["inputs"] = encoded
    elif fmt == "row":
        sizes = {
            a: (len(v) if isinstance(v, (np.ndarray, list)) and np.ndim(v) else None)
            for a, v in encoded.items()
        }
        if any(s is None for s in sizes.values()) or len(set(sizes.values())) != 1:
            raise CodecError(
                "the row format needs every input to have the same batch (0th) dimension; "
                f"got {sizes} — use the columnar format"
            )
        n = int(next(iter(sizes.values())) or 0)
        if len(encoded) == 1:
            (only,) = encoded.values()
            body["instances"] = only
        else:
            body["instances"] = [{a: v[i] for a, v in encoded.items()} for i in range(n)]
    else:
        raise CodecError(f"unknown REST format {fmt!r}; use 'columnar' or 'row'")
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def _decode_tensor(value: Any, spec: TensorSpec | None) -> np.ndarray:
    if spec is not None and spec.dtype == "string":
        return _decode_strings(value)
    dtype = np.dtype(spec.dtype) if spec is not None and spec.dtype not in ("bfloat16",) else None
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        return _decode_strings(value)


def _decode_strings(value: Any) -> np.ndarray:
    def one(v: Any) -> bytes:
        if isinstance(v, dict) and "b64" in v:
            return base64.b64decode(v["b64"])
        if isinstance(v, str):
            return v.encode("utf-8")
        raise CodecError(f"expected a string or {{'b64': ...}} in a string output, got {v!r}")

    def walk(v: Any) -> Any:
        return [walk(x) for x in v] if isinstance(v, list) else one(v)

    nested = walk(value)
    out = np.empty(np.shape(nested) if isinstance(nested, list) else (), dtype=object)
    if out.ndim == 0:
        out[()] = nested
    else:
        # np.array on bytes would make a fixed-width 'S' array; fill an object array instead.
        flat = out.reshape(-1)
        flat[:] = list(_flatten(nested))
    return out


def _flatten(v: Any) -> Any:
    if isinstance(v, list):
        for x in v:
            yield from _flatten(x)
    else:
        yield v


def decode_predict_body(raw: bytes, signature: SignatureSpec | None) -> dict[str, np.ndarray]:
    """``{"outputs": ...}`` or ``{"predictions": ...}`` -> ``{alias: ndarray}``."""
    body = orjson.loads(raw)
    outputs = signature.outputs if signature is not None else {}
    if "outputs" in body:
        value = body["outputs"]
        if isinstance(value, dict) and (not outputs or set(value) <= set(outputs)):
            return {a: _decode_tensor(v, outputs.get(a)) for a, v in value.items()}
        return {_single_alias(outputs): _decode_tensor(value, _single(outputs))}
    if "predictions" in body:
        rows = body["predictions"]
        if rows and isinstance(rows[0], dict) and (not outputs or set(rows[0]) <= set(outputs)):
            return {a: _decode_tensor([r[a] for r in rows], outputs.get(a)) for a in rows[0]}
        return {_single_alias(outputs): _decode_tensor(rows, _single(outputs))}
    raise CodecError(f"REST answer has neither 'outputs' nor 'predictions': {sorted(body)}")


def _single(outputs: Mapping[str, TensorSpec]) -> TensorSpec | None:
    return next(iter(outputs.values())) if len(outputs) == 1 else None


def _single_alias(outputs: Mapping[str, TensorSpec]) -> str:
    return next(iter(outputs)) if len(outputs) == 1 else "output"
