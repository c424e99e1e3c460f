"""Reliability: no tensor in a Predict request can take the server down (issue 10, case 1).

The shape of every input is checked as TensorFlow's ``TensorShape::IsValidShape`` checks it
before ``Tensor::FromProto`` allocates (no negative dims, at most 2**63 - 1 elements, at most
254 dims), and what the request's tensors decode to is bounded by
``--max_decoded_tensor_bytes`` (or the request's own size, if larger). Both answer
INVALID_ARGUMENT ``tensor parsing error: ALIAS`` with TensorFlow's reason, before anything
is allocated. The memory test runs ``tfsuite serve`` under a real ``RLIMIT_AS``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

import tfsuite.protos  # noqa: F401  (light TF proto import; must precede the pb2 imports)

# isort: split
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tfsuite.clients.codec import make_ndarray, make_tensor_proto
from tfsuite.server.app import ModelServer
from tfsuite.server.options import ServerOptions

#: The address-space bound of the server process in the memory test. TensorFlow's own
#: mappings take ~3 GB of it; none of the hostile requests below fits in the rest.
ADDRESS_SPACE_BYTES = 6 * 2**30


def _request(
    dims: list[int], *, content: bytes = b"", alias: str = "x"
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    tensor = request.inputs[alias]
    tensor.dtype = types_pb2.DT_FLOAT
    for d in dims:
        tensor.tensor_shape.dim.add().size = d
    tensor.tensor_content = content
    return request


def _good_request() -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    request.inputs["x"].CopyFrom(make_tensor_proto(np.array([1.0, 2.0, 5.0], np.float32)))
    return request


#: (id, dims, tensor_content, TensorFlow's reason in the message)
HOSTILE = [
    ("1e9x4-no-values", [1_000_000_000, 4], b"", "would decode to more than"),
    ("1e9x224x224x3", [1_000_000_000, 224, 224, 3], b"", "would decode to more than"),
    (
        "2^62x2^62x224x3",
        [2**62, 2**62, 224, 3],
        b"",
        (
            "Shape [4611686018427387904,4611686018427387904,224,3] is too large "
            "(more than 2**63 - 1 entries)"
        ),
    ),
    ("negative-5", [-5, 224, 224, 3], b"", "Shape [-5,224,224,3] is not fully defined"),
    (
        "minus-1-with-content",
        [-1, 2, 2, 3],
        np.zeros(12, np.float32).tobytes(),
        "Shape [?,2,2,3] is not fully defined",
    ),
    ("255-dims", [1] * 255, b"", "has too many dimensions"),
    ("300e6-floats", [300_000_000], b"", "would decode to more than"),
]


def _assert_refused(
    stub: prediction_service_pb2_grpc.PredictionServiceStub,
    dims: list[int],
    content: bytes,
    reason: str,
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(_request(dims, content=content), timeout=60)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    details = err.value.details()
    assert details.startswith("tensor parsing error: x: "), details
    assert reason in details


def _assert_serves(stub: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    response = stub.Predict(_good_request(), timeout=60)
    np.testing.assert_allclose(make_ndarray(response.outputs["y"]), [2.5, 3.0, 4.5])


@pytest.fixture(scope="module")
def stub(half_plus_two_base: Path) -> Iterator[prediction_service_pb2_grpc.PredictionServiceStub]:
    options = ServerOptions(
        port=-1,
        rest_api_port=0,
        model_name="m",
        model_base_path=str(half_plus_two_base),
        file_system_poll_wait_seconds=0,
    )
    with (
        ModelServer(options) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
    ):
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.mark.parametrize(
    ("dims", "content", "reason"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_shapes_are_invalid_argument_in_tf_words_and_the_server_serves_on(
    stub: prediction_service_pb2_grpc.PredictionServiceStub,
    dims: list[int],
    content: bytes,
    reason: str,
) -> None:
    _assert_refused(stub, dims, content, reason)
    _assert_serves(stub)


def test_decoded_size_limit_is_the_flag_or_the_request_size_whichever_is_larger(
    half_plus_two_base: Path,
) -> None:
    limit = 1024
    options = ServerOptions(
        port=-1,
        rest_api_port=0,
        model_name="m",
        model_base_path=str(half_plus_two_base),
        file_system_poll_wait_seconds=0,
        max_decoded_tensor_bytes=limit,
    )
    with (
        ModelServer(options) as server,
        grpc.insecure_channel(
            f"127.0.0.1:{server.grpc_port}",
            options=[("grpc.max_send_message_length", 64 * 2**20)],
        ) as channel,
    ):
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        # 257 floats from a few bytes of dims: over the 1 KiB limit.
        _assert_refused(stub, [257], b"", f"more than {limit} bytes")
        # 256 floats (exactly 1 KiB) decode fine: zeros, TF's rule for no values.
        request = _request([256])
        out = make_ndarray(stub.Predict(request, timeout=30).outputs["y"])
        np.testing.assert_allclose(out, np.full(256, 2.0))
        # A big tensor that is all on the wire decodes to its own size: allowed.
        big = np.arange(100_000, dtype=np.float32)
        request = _request([big.size], content=big.tobytes())
        out = make_ndarray(stub.Predict(request, timeout=30).outputs["y"])
        np.testing.assert_allclose(out, big * 0.5 + 2.0)


@pytest.mark.slow
def test_huge_dims_under_an_address_space_limit_answer_invalid_argument_and_the_server_lives(
    half_plus_two_base: Path, launch_serve
) -> None:
    flags = [
        "--port=-1",
        "--rest_api_port=0",
        "--model_name=m",
        f"--model_base_path={half_plus_two_base}",
        "--file_system_poll_wait_seconds=0",
    ]
    with launch_serve(flags, address_space_bytes=ADDRESS_SPACE_BYTES) as served:
        with grpc.insecure_channel(f"127.0.0.1:{served.grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            _assert_serves(stub)
            for _id, dims, content, reason in HOSTILE:
                _assert_refused(stub, dims, content, reason)
                assert served.proc.poll() is None, f"server died on {_id}"
            _assert_serves(stub)
        assert served.proc.poll() is None
