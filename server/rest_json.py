"""TF Serving's REST JSON <-> tensors (``g3doc/api_rest.md``), with TF Serving's messages.

Requests: row format ``{"instances": [...]}`` (one value per instance, or one object per
instance when the signature has several inputs) and columnar ``{"inputs": ...}`` (one
value, or an object by input name). Binary strings travel as ``{"b64": "..."}``.
Responses: ``{"predictions": ...}`` for row requests (a list per instance, or an object per
instance when there are several outputs) and ``{"outputs": ...}`` for columnar ones.
Output strings are UTF-8 text unless the output name ends in ``_bytes`` (or they are not
valid UTF-8): then ``{"b64": ...}``.

Numbers go through numpy in C (``np.asarray`` on the parsed lists) and back out through
orjson's native numpy serializer, so the per-request cost stays close to JSON parsing.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import orjson

import tfsuite.protos  # noqa: F401  (light TF proto import; must precede the pb2 imports)

# isort: split
from tensorflow.core.example import example_pb2

from tfsuite.server.errors import ServingError
from tfsuite.server.servable import np_type_name

__all__ = [
    "PredictBody",
    "dumps",
    "examples_from_json",
    "parse_json",
    "parse_predict_body",
    "predict_response",
]


@dataclass
class PredictBody:
    """A decoded predict request body."""

    signature_name: str
    inputs: dict[str, np.ndarray]
    #: True for ``instances`` (row) requests, False for ``inputs`` (columnar) requests.
    row_format: bool


def parse_json(body: bytes) -> Any:
    """The body as JSON. Like TF Serving's rapidjson (``kParseNanAndInfFlag``), ``NaN``,
    ``Infinity`` and ``-Infinity`` are numbers (dense arrays also take ``Inf`` and ``-NaN``:
    ``rest_dense``)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if b"NaN" in body or b"Infinity" in body:
            try:
                return json.loads(body)  # Python's json reads them; orjson does not
            except ValueError:
                pass
        raise ServingError.invalid_argument(f"JSON Parse error: {exc}") from None


def _snippet(value: Any, limit: int = 200) -> str:
    text = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _decode_b64(value: dict[str, str]) -> bytes:
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise ServingError.invalid_argument("Unable to base64 decode") from None


def _strings(value: Any) -> Any:
    """Nested JSON strings / b64 objects -> nested bytes (shape kept)."""
    if isinstance(value, list):
        return [_strings(v) for v in value]
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict):
        if _is_b64(value):
            return _decode_b64(value)
        raise ServingError.invalid_argument(
            f"JSON Value: {_snippet(value)} not formatted correctly for base64 data"
        )
    raise _type_error(value, np.dtype(object))


def _type_error(value: Any, dtype: np.dtype[Any]) -> ServingError:
    return ServingError.invalid_argument(
        f"JSON Value: {_snippet(value)} Type: {_json_type(value)} is not of expected type: "
        f"{np_type_name(dtype)}"
    )


def _first_bad_leaf(value: Any, dtype: np.dtype[Any]) -> Any:
    """The first leaf that does not fit ``dtype`` (for the error message)."""
    if isinstance(value, list):
        for v in value:
            bad = _first_bad_leaf(v, dtype)
            if bad is not None:
                return bad
        return None
    if dtype.kind == "b":
        return None if isinstance(value, bool) else value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if dtype.kind in "iu" and not isinstance(value, int):
        return value
    return None


#: Which inferred numpy kinds a JSON value may have for each target kind (bools are not numbers).
_ACCEPTS = {"f": "fiu", "i": "iu", "u": "iu", "b": "b"}


def to_array(value: Any, dtype: np.dtype[Any], name: str) -> np.ndarray:
    """One JSON value (scalar or nested lists) -> an array of the signature's dtype."""
    if dtype == object:
        arr = np.array(_strings(value), dtype=object)
        if arr.ndim and any(isinstance(v, list) for v in arr.flat):
            raise ServingError.invalid_argument(
                f"Input {name!r} is a ragged (non-rectangular) list"
            )
        return arr
    # Let numpy infer first (one pass in C), then check the kind: an explicit dtype would
    # silently turn 1.5 into 1 or true into 1.0, which TF Serving rejects.
    try:
        inferred = np.asarray(value)
    except ValueError:
        inferred = None
    if inferred is not None and inferred.dtype.kind in "iuf" and dtype.kind != "b":
        # numpy turns true into 1 among numbers; TF Serving refuses it (rest_dense takes
        # plain numeric arrays before they get here, so this walk sees the rare rest).
        bad = _first_bad_leaf(value, dtype)
        if bad is not None:
            raise _type_error(bad, dtype)
    if inferred is None or inferred.dtype.kind not in _ACCEPTS.get(dtype.kind, ""):
        bad = _first_bad_leaf(value, dtype)
        if bad is not None:
            raise _type_error(bad, dtype)
        raise ServingError.invalid_argument(
            f"Input {name!r}: lists are ragged (non-rectangular); every instance needs the same shape"
        )
    if dtype.kind in "iu" and inferred.size:
        info = np.iinfo(dtype)
        if inferred.min() < info.min or inferred.max() > info.max:
            raise ServingError.invalid_argument(
                f"Input {name!r}: a value is out of range for {np_type_name(dtype)}"
            )
    with np.errstate(over="ignore"):  # e.g. 1e5 as float16 is inf, as in TF Serving
        return inferred.astype(dtype, copy=False)


def _signature_name(doc: Any) -> str:
    """Checks shared by every request body: a JSON object with a string ``signature_name``."""
    if not isinstance(doc, dict):
        raise ServingError.invalid_argument(
            f"JSON Value: {_snippet(doc)} Type: {_json_type(doc)} is not of expected type: Object"
        )
    signature_name = doc.get("signature_name", "serving_default")
    if not isinstance(signature_name, str):
        raise ServingError.invalid_argument(
            f"JSON Value: {_snippet(signature_name)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return signature_name


def parse_predict_body(doc: Any, specs: Mapping[str, np.dtype[Any]] | None) -> PredictBody:
    """A parsed predict JSON document -> named input arrays.

    ``specs`` are the signature's input dtypes by alias (object for DT_STRING); None when
    the signature is not known yet: then only ``signature_name`` is read, for the caller
    to look the signature up.
    """
    signature_name = _signature_name(doc)
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise ServingError.invalid_argument(
            "JSON Value: request not formatted correctly: expecting only one of 'inputs' or "
            "'instances' keys to exist"
        )
    if not has_instances and not has_inputs:
        raise ServingError.invalid_argument("Missing 'inputs' or 'instances' key")
    if specs is None:
        return PredictBody(signature_name, {}, has_instances)
    if has_instances:
        return PredictBody(signature_name, _from_instances(doc["instances"], specs), True)
    return PredictBody(signature_name, _from_inputs(doc["inputs"], specs), False)


def _unknown_input(name: str, specs: Mapping[str, np.dtype[Any]]) -> ServingError:
    return ServingError.invalid_argument(f"JSON object: does not have named input: {name}")


def _from_instances(instances: Any, specs: Mapping[str, np.dtype[Any]]) -> dict[str, np.ndarray]:
    if not isinstance(instances, list):
        raise ServingError.invalid_argument(
            f"JSON Value: {_snippet(instances)} Excepting 'instances' to be an list/array"
        )
    if not instances:
        raise ServingError.invalid_argument("No values in 'instances' (it is an empty list)")
    first = instances[0]
    if isinstance(first, dict) and not _is_b64(first):
        # One object per instance: {input_name: value}; every instance names the same inputs.
        names = list(first)
        for name in names:
            if name not in specs:
                raise _unknown_input(name, specs)
        columns: dict[str, list[Any]] = {name: [] for name in names}
        for item in instances:
            if not isinstance(item, dict) or _is_b64(item) or item.keys() != first.keys():
                raise ServingError.invalid_argument(
                    f"Expecting object with keys {sorted(names)} but got: {_snippet(item)}"
                )
            for name in names:
                columns[name].append(item[name])
        return {name: to_array(col, specs[name], name) for name, col in columns.items()}
    return _single_input(instances, specs, "each instance")


def _from_inputs(inputs: Any, specs: Mapping[str, np.dtype[Any]]) -> dict[str, np.ndarray]:
    if isinstance(inputs, dict) and not _is_b64(inputs):
        out = {}
        for name, value in inputs.items():
            dtype = specs.get(name)
            if dtype is None:
                raise _unknown_input(name, specs)
            out[name] = to_array(value, dtype, name)
        return out
    return _single_input(inputs, specs, "'inputs'")


def _single_input(
    value: Any, specs: Mapping[str, np.dtype[Any]], what: str
) -> dict[str, np.ndarray]:
    """An unnamed value is the signature's only input; with several, ``what`` must name them."""
    if len(specs) != 1:
        raise ServingError.invalid_argument(
            f"The signature has {len(specs)} inputs ({', '.join(sorted(specs))}): {what} "
            "must be an object naming them"
        )
    ((name, dtype),) = specs.items()
    return {name: to_array(value, dtype, name)}


def _jsonable(name: str, arr: np.ndarray) -> Any:
    """An output array in a form orjson serializes natively (numeric arrays stay arrays)."""
    if arr.dtype == object or arr.dtype.kind == "S":
        as_bytes = name.endswith("_bytes")

        def conv(v: Any) -> Any:
            if isinstance(v, list):
                return [conv(x) for x in v]
            if isinstance(v, str):
                return v
            if not as_bytes:
                try:
                    return v.decode("utf-8")
                except UnicodeDecodeError:
                    pass
            return {"b64": base64.b64encode(v).decode("ascii")}

        return conv(arr.tolist())
    if arr.dtype.kind == "c":
        raise ServingError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"Output {name!r} of type {arr.dtype} cannot be written as JSON",
        )
    return np.ascontiguousarray(arr)


def predict_response(outputs: Mapping[str, np.ndarray], row_format: bool) -> bytes:
    """TF Serving's JSON for a predict response."""
    if not row_format:
        if len(outputs) == 1:
            ((name, arr),) = outputs.items()
            return dumps({"outputs": _jsonable(name, arr)})
        return dumps({"outputs": {n: _jsonable(n, a) for n, a in outputs.items()}})
    if len(outputs) == 1:
        ((name, arr),) = outputs.items()
        return dumps({"predictions": _jsonable(name, arr)})
    batch: int | None = None
    for name, arr in outputs.items():
        size = arr.shape[0] if arr.ndim else -1
        if batch is None:
            batch = size
        elif size != batch:
            raise ServingError.invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {size} expecting: {batch}"
            )
    converted = {n: _jsonable(n, a) for n, a in outputs.items()}
    rows = [{n: c[i] for n, c in converted.items()} for i in range(batch or 0)]
    return dumps({"predictions": rows})


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


def _feature(name: str, value: Any, feature: Any) -> None:
    values = value if isinstance(value, list) else [value]
    if not values:
        return
    if all(isinstance(v, int) for v in values):  # bools count as ints, as in JSON->tf.Example
        feature.int64_list.value.extend(int(v) for v in values)
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        feature.float_list.value.extend(float(v) for v in values)
    elif all(isinstance(v, str) or _is_b64(v) for v in values):
        feature.bytes_list.value.extend(
            _decode_b64(v) if isinstance(v, dict) else v.encode("utf-8") for v in values
        )
    else:
        raise ServingError.invalid_argument(
            f"Feature '{name}': JSON Value: {_snippet(value)} mixes types or is not a number, "
            'string or {"b64": ...}'
        )


def _example(obj: Any, into: Any) -> None:
    if not isinstance(obj, dict):
        raise ServingError.invalid_argument(
            f"JSON Value: {_snippet(obj)} Type: {_json_type(obj)} is not of expected type: Object"
        )
    for name, value in obj.items():
        feature = into.features.feature[name]
        feature.Clear()  # an example's own feature replaces the context's of the same name
        _feature(name, value, feature)


def examples_from_json(doc: Any) -> tuple[str, list[bytes]]:
    """``{"signature_name", "context", "examples"}`` -> (signature name, serialized tf.Examples).

    A ``context`` object's features are merged into every example (TF Serving's
    ExampleListWithContext).
    """
    signature_name = _signature_name(doc)
    examples = doc.get("examples")
    if not isinstance(examples, list):
        raise ServingError.invalid_argument("Missing 'examples' key (a list of objects)")
    context = None
    if "context" in doc:
        context = example_pb2.Example()
        _example(doc["context"], context)
    out = []
    for item in examples:
        example = example_pb2.Example()
        if context is not None:
            example.CopyFrom(context)
        _example(item, example)
        out.append(example.SerializeToString())
    return signature_name, out
