"""TF Serving's REST JSON <-> tensors, without a server (pure functions)."""

from __future__ import annotations

import base64
import importlib

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tfsuite.protos  # noqa: F401

# isort: split
from tensorflow.core.example import example_pb2

from tfsuite.server.errors import ServingError
from tfsuite.server.rest import parse_model_path
from tfsuite.server.rest_json import examples_from_json, parse_predict_body, predict_response

F32 = {"x": np.dtype(np.float32)}


def _parse(doc: object, specs: dict[str, np.dtype] = F32):
    return parse_predict_body(orjson.loads(orjson.dumps(doc)), specs)


def test_row_and_columnar_single_input() -> None:
    row = _parse({"instances": [[1, 2], [3, 4]]})
    assert row.row_format and row.inputs["x"].dtype == np.float32
    assert row.inputs["x"].tolist() == [[1.0, 2.0], [3.0, 4.0]]
    col = _parse({"inputs": [[1, 2]], "signature_name": "s"})
    assert not col.row_format and col.signature_name == "s" and col.inputs["x"].shape == (1, 2)


def test_row_objects_for_several_inputs() -> None:
    specs = {"a": np.dtype(np.int32), "b": np.dtype(object)}
    body = _parse({"instances": [{"a": 1, "b": "x"}, {"a": 2, "b": {"b64": "eQ=="}}]}, specs)
    assert body.inputs["a"].tolist() == [1, 2] and body.inputs["a"].dtype == np.int32
    assert body.inputs["b"].tolist() == [b"x", b"y"]


@pytest.mark.parametrize(
    ("doc", "specs", "fragment"),
    [
        ({"instances": [1.5]}, {"x": np.dtype(np.int32)}, "is not of expected type: int32"),
        ({"instances": [True]}, F32, "Type: True is not of expected type: float"),
        ({"instances": [2**40]}, {"x": np.dtype(np.int32)}, "out of range for int32"),
        ({"instances": [{"a": 1}, {"b": 2}]}, {"a": F32["x"], "b": F32["x"]}, "Expecting object"),
        (
            {"inputs": [1.0]},
            {"a": F32["x"], "b": F32["x"]},
            "The signature has 2 inputs (a, b): 'inputs' must be an object naming them",
        ),
        ({"instances": [1.0]}, {"a": F32["x"], "b": F32["x"]}, "each instance must be an object"),
        ({"instances": []}, F32, "empty"),
        ({"instances": 3}, F32, "to be an list/array"),
        ({"instances": [{"b64": "@@"}]}, {"x": np.dtype(object)}, "Unable to base64 decode"),
        ({"instances": [{"b64": "eQ==", "x": 1}]}, {"x": np.dtype(object)}, "does not have named"),
        ({"signature_name": 3, "instances": [1]}, F32, "'signature_name' key must be a string"),
        ([1, 2], F32, "is not of expected type: Object"),
    ],
)
def test_bad_bodies(doc: object, specs: dict[str, np.dtype], fragment: str) -> None:
    with pytest.raises(ServingError) as err:
        _parse(doc, specs)
    assert fragment in err.value.message
    assert err.value.http_status == 400


def test_predictions_shapes() -> None:
    y = np.array([2.5, 3.0], np.float32)
    assert orjson.loads(predict_response({"y": y}, True)) == {"predictions": [2.5, 3.0]}
    assert orjson.loads(predict_response({"y": y}, False)) == {"outputs": [2.5, 3.0]}
    two = {"y": y, "k": np.array([[1, 2], [3, 4]], np.int64)}
    assert orjson.loads(predict_response(two, True)) == {
        "predictions": [{"y": 2.5, "k": [1, 2]}, {"y": 3.0, "k": [3, 4]}]
    }
    assert orjson.loads(predict_response(two, False)) == {
        "outputs": {"y": [2.5, 3.0], "k": [[1, 2], [3, 4]]}
    }


def test_inconsistent_batch_sizes_in_row_output() -> None:
    with pytest.raises(ServingError, match="inconsistent batch size"):
        predict_response({"a": np.zeros(2, np.float32), "b": np.zeros(3, np.float32)}, True)


def test_string_outputs_text_bytes_suffix_and_invalid_utf8() -> None:
    text = np.array([b"hi", b"\xff\xfe"], dtype=object)
    out = orjson.loads(predict_response({"s": text}, False))["outputs"]
    assert out == ["hi", {"b64": base64.b64encode(b"\xff\xfe").decode()}]
    out = orjson.loads(predict_response({"s_bytes": text}, False))["outputs"]
    assert out[0] == {"b64": base64.b64encode(b"hi").decode()}


def test_half_and_bool_outputs() -> None:
    out = orjson.loads(
        predict_response({"h": np.array([1.5], np.float16), "b": np.array([True], np.bool_)}, False)
    )
    assert out == {"outputs": {"h": [1.5], "b": [True]}}


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
        elements=st.floats(-1e6, 1e6, width=32),
    )
)
def test_float32_round_trip_is_exact(arr: np.ndarray) -> None:
    # JSON numbers from the shortest float32 repr parse back to the same float32 values.
    body = predict_response({"y": arr}, False)
    back = _parse({"inputs": orjson.loads(body)["outputs"]}).inputs["x"]
    np.testing.assert_array_equal(back, arr)


def test_examples_with_context() -> None:
    doc = {
        "signature_name": "c",
        "context": {"shared": "ctx", "n": 1},
        "examples": [{"x": 1.5, "tags": ["a", {"b64": "Yg=="}]}, {"x": [2.0, 3.0], "n": 7}],
    }
    signature, raw = examples_from_json(doc)
    assert signature == "c" and len(raw) == 2
    first, second = (example_pb2.Example.FromString(r) for r in raw)
    feats = first.features.feature
    assert list(feats["x"].float_list.value) == [1.5]
    assert list(feats["tags"].bytes_list.value) == [b"a", b"b"]
    assert list(feats["shared"].bytes_list.value) == [b"ctx"]
    assert list(second.features.feature["n"].int64_list.value) == [7]  # the example wins


def test_examples_errors() -> None:
    with pytest.raises(ServingError, match="Missing 'examples'"):
        examples_from_json({"instances": []})
    with pytest.raises(ServingError, match="mixes types"):
        examples_from_json({"examples": [{"x": [1.0, "a"]}]})


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("m", ("m", None, None, "status")),
        ("m/versions/3", ("m", 3, None, "status")),
        ("m/labels/stable/metadata", ("m", None, "stable", "metadata")),
        ("m/versions/2:predict", ("m", 2, None, "predict")),
        ("m:classify", ("m", None, None, "classify")),
        ("m:explode", None),
        ("m/versions/x:predict", None),
        ("m/extra/metadata", None),
    ],
)
def test_model_paths(path: str, expected: tuple[object, ...] | None) -> None:
    parsed = parse_model_path(path)
    got = None if parsed is None else (parsed.name, parsed.version, parsed.label, parsed.action)
    assert got == expected


@pytest.mark.parametrize(
    "module",
    [
        "tfsuite.server.app",
        "tfsuite.server.cli",
        "tfsuite.server.flags",
        "tfsuite.server.grpc_service",
        "tfsuite.server.observers",
        "tfsuite.server.rest",
        "tfsuite.server.rest_json",
    ],
)
def test_all_exports_exist(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert not missing
