"""The dense REST decoder (``rest_dense``) gives exactly the generic path's tensors
(``rest_json``: orjson + numpy) for TF Serving's row and columnar bodies, declines what it
does not handle, and takes NaN/Infinity as TF Serving's rapidjson does."""

from __future__ import annotations

import math
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tfsuite.server.errors import ServingError
from tfsuite.server.rest_dense import CHUNK_BYTES, scan_predict_body
from tfsuite.server.rest_json import parse_json, parse_predict_body

DTYPES = [np.float32, np.float64, np.float16, np.int32, np.int64, np.uint8, np.int8]


def _generic(body: bytes, dtypes: dict[str, np.dtype[Any]]) -> dict[str, np.ndarray]:
    return parse_predict_body(parse_json(body), dtypes).inputs


def _dense(body: bytes, dtypes: dict[str, np.dtype[Any]]) -> dict[str, np.ndarray] | None:
    scanned = scan_predict_body(body)
    return None if scanned is None else scanned.decode(body, dtypes)


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for name, value in a.items():
        assert value.dtype == b[name].dtype and value.shape == b[name].shape
        np.testing.assert_array_equal(value, b[name])  # NaN == NaN here, bit-exact otherwise


@st.composite
def arrays(draw: st.DrawFn) -> tuple[np.ndarray, np.dtype[Any]]:
    """(values a client writes as JSON, the signature's dtype)."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5))
    if dtype.kind == "f" and draw(st.booleans()):
        # Finite float64 numbers (orjson writes their shortest round-trip repr); float16
        # inputs see values in its range, so both paths overflow alike (to inf).
        bound = 6e4 if dtype == np.float16 else 1e300
        elements = st.floats(-bound, bound, allow_nan=False, width=64)
        return draw(hnp.arrays(np.float64, shape, elements=elements)), dtype
    if dtype.kind == "f":  # JSON integers for a float input (within 2**53: exact in both)
        ints = st.integers(-(2**53), 2**53)
        return draw(hnp.arrays(np.int64, shape, elements=ints)), dtype
    info = np.iinfo(dtype)
    ints = st.integers(int(info.min), int(info.max))
    return draw(hnp.arrays(dtype, shape, elements=ints)), dtype


def _text(values: np.ndarray, spaced: bool) -> bytes:
    text = orjson.dumps(values.tolist())
    return text.replace(b",", b" ,\n ").replace(b"[", b"[ ") if spaced else text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    drawn=arrays(),
    layout=st.sampled_from(["instances", "inputs", "named", "named2"]),
    spaced=st.booleans(),
    signature_first=st.booleans(),
)
def test_dense_decoder_equals_the_generic_path(
    drawn: tuple[np.ndarray, np.dtype[Any]], layout: str, spaced: bool, signature_first: bool
) -> None:
    values, dtype = drawn
    text = _text(values, spaced)
    dtypes = {"x": dtype}
    if layout == "instances":
        doc = b'"instances": ' + text
    elif layout == "inputs":
        doc = b'"inputs":' + text
    elif layout == "named":
        doc = b'"inputs": {"x": ' + text + b"}"
    else:
        doc = b'"inputs": {"x": ' + text + b', "y" : ' + text + b"}"
        dtypes["y"] = np.dtype(np.float64) if dtype.kind == "f" else dtype
    sig = b'"signature_name": "serving_default"'
    body = b"{" + (sig + b", " + doc if signature_first else doc + b" , " + sig) + b"}"
    dense = _dense(body, dtypes)
    assert dense is not None, body[:200]
    _same(dense, _generic(body, dtypes))


def test_large_bodies_cross_chunk_boundaries_exactly() -> None:
    rng = np.random.default_rng(7)
    image = rng.random((2, 64, 64, 3), dtype=np.float32)
    body = orjson.dumps({"instances": image.tolist()})
    assert len(body) > 4 * CHUNK_BYTES
    dtypes = {"x": np.dtype(np.float32)}
    dense = _dense(body, dtypes)
    assert dense is not None
    _same(dense, _generic(body, dtypes))
    np.testing.assert_array_equal(dense["x"], image)  # float32 -> JSON -> float32 is exact


def test_nan_and_infinity_as_rapidjson_reads_them() -> None:
    body = b'{"instances": [NaN, -NaN, Infinity, -Infinity, Inf, -Inf, 1.5]}'
    (x,) = _dense(body, {"x": np.dtype(np.float32)}).values()
    assert math.isnan(x[0]) and math.isnan(x[1])
    assert x[2:].tolist() == [math.inf, -math.inf, math.inf, -math.inf, 1.5]
    # The generic path (objects per instance, strings...) takes Python json's spellings.
    body = b'{"instances": [{"x": NaN, "y": Infinity}, {"x": -Infinity, "y": 2.0}]}'
    dtypes = {"x": np.dtype(np.float32), "y": np.dtype(np.float32)}
    assert _dense(body, dtypes) is None
    out = _generic(body, dtypes)
    assert math.isnan(out["x"][0]) and out["x"][1] == -math.inf
    assert out["y"].tolist() == [math.inf, 2.0]


@pytest.mark.parametrize(
    ("body", "dtype", "fragment"),
    [
        (
            b'{"instances": [1, true, 3]}',
            np.uint8,
            "JSON Value: true Type: True is not of expected",
        ),
        (b'{"instances": [1.0, false]}', np.float32, "Type: False is not of expected type: float"),
        (b'{"instances": [[1, 2], [3]]}', np.float32, "ragged"),
        (b'{"instances": [1.5]}', np.int32, "is not of expected type: int32"),
        (b'{"instances": [300]}', np.uint8, "out of range for uint8"),
        (b'{"instances": [01]}', np.float32, "JSON Parse error"),
        (b'{"instances": [1 2]}', np.float32, "JSON Parse error"),
        (b'{"instances": [nan]}', np.float32, "JSON Parse error"),
        (b'{"instances": []}', np.float32, "empty"),
        (b'{"instances": [1], "inputs": [1]}', np.float32, "only one of"),
    ],
)
def test_what_the_dense_decoder_declines_gets_tf_servings_error(
    body: bytes, dtype: type, fragment: str
) -> None:
    dtypes = {"x": np.dtype(dtype)}
    assert _dense(body, dtypes) is None
    with pytest.raises(ServingError) as err:
        _generic(body, dtypes)
    assert fragment in err.value.message


def test_rest_predict_with_nan_and_true_through_the_server(http: httpx.Client) -> None:
    r = http.post("/v1/models/hp2/versions/1:predict", content=b'{"instances": [NaN, Infinity]}')
    assert r.status_code == 200, r.text
    r = http.post("/v1/models/hp2/versions/1:predict", content=b'{"instances": [1.0, true]}')
    assert r.status_code == 400
    assert "JSON Value: true Type: True is not of expected type: float" in r.json()["error"]


@pytest.fixture(scope="module")
def http(api_models_config) -> Any:
    from tfsuite.server.app import ModelServer
    from tfsuite.server.options import ServerOptions

    options = ServerOptions(
        port=-1,
        rest_api_port=-1,
        model_config_file=str(api_models_config),
        file_system_poll_wait_seconds=0,
    )
    with (
        ModelServer(options) as server,
        httpx.Client(base_url=f"http://127.0.0.1:{server.rest_port}", timeout=30) as client,
    ):
        yield client
