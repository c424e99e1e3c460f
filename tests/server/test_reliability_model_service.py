"""Reliability of ModelService.HandleReloadConfigRequest (issue 10, case 2, and the
``--disable_model_service_reload`` flag).

An empty ReloadConfigRequest, or zero bytes sent to the method, is INVALID_ARGUMENT in TF
Serving's words and changes nothing: the models keep serving. Real gRPC, real models.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

import tfsuite.protos  # noqa: F401  (light TF proto import; must precede the pb2 imports)

# isort: split
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tfsuite.clients.codec import make_ndarray, make_tensor_proto
from tfsuite.server.app import ModelServer
from tfsuite.server.options import ServerOptions

RELOAD_METHOD = "/tensorflow.serving.ModelService/HandleReloadConfigRequest"
TF_SERVING_MESSAGE = (
    "ServerModelConfig type not supported by HandleReloadConfigRequest. "
    "Only ModelConfigList is currently supported"
)


def _start(base: Path, **extra: object) -> ModelServer:
    options = ServerOptions(
        port=-1,
        rest_api_port=0,
        model_name="m",
        model_base_path=str(base),
        file_system_poll_wait_seconds=0,
        **extra,  # type: ignore[arg-type]
    )
    return ModelServer(options).start()


@pytest.fixture
def channel(half_plus_two_base: Path) -> Iterator[grpc.Channel]:
    server = _start(half_plus_two_base)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as ch:
            yield ch
    finally:
        server.stop(1.0)


def _assert_m_serves(channel: grpc.Channel) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    request.inputs["x"].CopyFrom(make_tensor_proto(np.array([1.0], np.float32)))
    response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
        request, timeout=30
    )
    np.testing.assert_allclose(make_ndarray(response.outputs["y"]), [2.5])
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "m"}), timeout=30
    )
    assert [s.state for s in status.model_version_status] == [
        get_model_status_pb2.ModelVersionStatus.AVAILABLE
    ]


def test_empty_reload_config_request_is_invalid_argument_and_changes_nothing(
    channel: grpc.Channel,
) -> None:
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == TF_SERVING_MESSAGE
    _assert_m_serves(channel)


def test_zero_byte_reload_config_request_is_invalid_argument_and_changes_nothing(
    channel: grpc.Channel,
) -> None:
    raw = channel.unary_unary(RELOAD_METHOD, request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as err:
        raw(b"", timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == TF_SERVING_MESSAGE
    _assert_m_serves(channel)


def test_disable_model_service_reload_refuses_even_a_valid_config(
    half_plus_two_base: Path, tmp_path: Path
) -> None:
    server = _start(half_plus_two_base, disable_model_service_reload=True)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            request = model_management_pb2.ReloadConfigRequest()
            # A config that would point the model somewhere else entirely.
            model = request.config.model_config_list.config.add()
            model.name = "m"
            model.base_path = str(tmp_path)
            model.model_platform = "tensorflow"
            with pytest.raises(grpc.RpcError) as err:
                model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
                    request, timeout=30
                )
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "--disable_model_service_reload" in err.value.details()
            _assert_m_serves(channel)
    finally:
        server.stop(1.0)
