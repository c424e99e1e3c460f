"""The tensor codec: every dtype, both encodings, cross-checked against TensorFlow's own."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tfsuite.clients import codec

tf = pytest.importorskip("tensorflow")
from tensorflow_serving.apis import predict_pb2

NUMERIC = [
    np.float16, np.float32, np.float64,
    np.int8, np.int16, np.int32, np.int64,
    np.uint8, np.uint16, np.uint32, np.uint64,
    np.bool_, np.complex64, np.complex128,
]  # fmt: skip

shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)


@st.composite
def numeric_arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(NUMERIC)))
    return draw(hnp.arrays(dtype, shapes))


@st.composite
def string_arrays(draw: st.DrawFn) -> np.ndarray:
    shape = draw(shapes)
    n = int(np.prod(shape))
    values = draw(st.lists(st.binary(max_size=20), min_size=n, max_size=n))
    arr = np.empty(shape, dtype=object)
    arr.reshape(-1)[:] = values
    return arr


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    if a.dtype == object:
        assert a.reshape(-1).tolist() == b.reshape(-1).tolist()
    else:
        # Bit-exact (NaN payloads, -0.0): compare the bytes, not the values.
        assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


fast = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(numeric_arrays(), st.booleans())
def test_numeric_round_trip_both_encodings(arr: np.ndarray, use_content: bool) -> None:
    proto = codec.make_tensor_proto(arr, use_content=use_content)
    assert bool(proto.tensor_content) == (use_content and arr.size > 0)
    assert_same(codec.make_ndarray(proto), arr)
    # TensorFlow reads what we write ...
    assert_same(tf.make_ndarray(proto), arr)


@fast
@given(numeric_arrays())
def test_decodes_what_tensorflow_encodes(arr: np.ndarray) -> None:
    assert_same(codec.make_ndarray(tf.make_tensor_proto(arr)), arr)


@fast
@given(string_arrays())
def test_strings_round_trip_through_string_val(arr: np.ndarray) -> None:
    proto = codec.make_tensor_proto(arr)
    assert not proto.tensor_content and len(proto.string_val) == arr.size
    assert_same(codec.make_ndarray(proto), arr)
    assert_same(tf.make_ndarray(proto), arr)
    assert_same(codec.make_ndarray(tf.make_tensor_proto(arr)), arr)


@fast
@given(st.one_of(numeric_arrays(), string_arrays()), st.text(min_size=1, max_size=8))
def test_wire_request_parses_as_the_same_predict_request(arr: np.ndarray, alias: str) -> None:
    head = predict_pb2.PredictRequest()
    head.model_spec.name = "m"
    head.model_spec.version_label = "weight_quant"
    head.output_filter.append("out")
    inputs = {alias: arr, "second": np.arange(3)}
    wire = codec.predict_request_wire(head.SerializeToString(), inputs)
    parsed = predict_pb2.PredictRequest.FromString(wire)
    assert parsed.model_spec == head.model_spec and list(parsed.output_filter) == ["out"]
    assert_same(tf.make_ndarray(parsed.inputs[alias]), arr)
    assert_same(codec.make_ndarray(parsed.inputs["second"]), np.arange(3))
    reference = predict_pb2.PredictRequest()
    reference.CopyFrom(head)
    reference.inputs[alias].CopyFrom(codec.make_tensor_proto(arr))
    reference.inputs["second"].CopyFrom(codec.make_tensor_proto(np.arange(3)))
    assert parsed == reference


@pytest.mark.parametrize("dtype", NUMERIC)
def test_val_field_shorthand_repeats_the_last_value(dtype: type) -> None:
    proto = tf.make_tensor_proto(np.ones((), dtype=dtype))  # scalar: one value in *_val or content
    proto.tensor_shape.Clear()
    for n in (2, 3):
        proto.tensor_shape.dim.add().size = n
    if proto.tensor_content:  # force the typed-field encoding
        value = codec.make_ndarray(tf.make_tensor_proto(np.ones((), dtype=dtype)))
        proto = codec.make_tensor_proto(value, use_content=False)
        proto.tensor_shape.Clear()
        for n in (2, 3):
            proto.tensor_shape.dim.add().size = n
    got = codec.make_ndarray(proto)
    np.testing.assert_array_equal(got, tf.make_ndarray(proto))
    assert got.shape == (2, 3) and got.dtype == np.dtype(dtype)


def test_prebuilt_tensor_protos_pass_through_the_wire_encoder() -> None:
    ready = tf.make_tensor_proto(np.arange(4, dtype=np.int64).reshape(2, 2))
    wire = codec.predict_request_wire(b"", {"x": ready, "y": np.ones(2, np.float32)})
    parsed = predict_pb2.PredictRequest.FromString(wire)
    assert parsed.inputs["x"] == ready
    np.testing.assert_array_equal(codec.make_ndarray(parsed.inputs["y"]), np.ones(2, np.float32))


def test_big_endian_input_is_sent_little_endian() -> None:
    arr = np.arange(6, dtype=">i4").reshape(2, 3)
    proto = codec.make_tensor_proto(arr)
    np.testing.assert_array_equal(tf.make_ndarray(proto), arr.astype("<i4"))
    wire = b"".join(codec.tensor_wire(arr))
    np.testing.assert_array_equal(codec.make_ndarray(codec.TensorProto.FromString(wire)), arr)


def test_non_contiguous_and_str_inputs() -> None:
    arr = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2]
    wire = b"".join(codec.tensor_wire(arr))
    np.testing.assert_array_equal(codec.make_ndarray(codec.TensorProto.FromString(wire)), arr)
    proto = codec.make_tensor_proto(["a", "bé"])
    assert list(codec.make_ndarray(proto)) == [b"a", "bé".encode()]


def test_bfloat16_decodes_to_float32() -> None:
    values = np.array([1.5, -2.0, 3.25], dtype=np.float32)
    proto = tf.make_tensor_proto(tf.constant(values, dtype=tf.bfloat16))
    got = codec.make_ndarray(proto)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, values)


def test_errors_are_codec_errors() -> None:
    with pytest.raises(codec.CodecError, match="no TensorFlow equivalent"):
        codec.make_tensor_proto(np.zeros(2, dtype="datetime64[s]"))
    bad = codec.make_tensor_proto(np.zeros(4, dtype=np.float32))
    bad.tensor_shape.dim[0].size = 5
    with pytest.raises(codec.CodecError, match="does not fit the shape"):
        codec.make_ndarray(bad)
    with pytest.raises(codec.CodecError, match="as strings"):
        codec.make_tensor_proto([1, 2], dtype="string")


def test_codec_does_not_import_tensorflow() -> None:
    code = (
        "import sys, numpy as np; from tfsuite.clients import codec, grpc_client, rest_client; "
        "codec.make_ndarray(codec.make_tensor_proto(np.ones(3))); "
        "assert 'tensorflow.python' not in sys.modules and 'tensorflow' not in sys.modules, "
        "'tf imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
