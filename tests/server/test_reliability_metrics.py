"""Reliability: clients cannot grow the metrics without bound (issue 10, case 6).

Every request with a model name the config does not have is counted under one
``model_name="__unknown__"`` series; only the configured models get series of their own.
Real gRPC requests with random names, the real Prometheus endpoint.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

import tfsuite.protos  # noqa: F401  (light TF proto import; must precede the pb2 imports)

# isort: split
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tfsuite.clients.codec import make_tensor_proto
from tfsuite.server.app import ModelServer
from tfsuite.server.options import ServerOptions

METRICS_PATH = "/monitoring/prometheus/metrics"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, half_plus_two_base: Path
) -> Iterator[ModelServer]:
    monitoring = tmp_path_factory.mktemp("metrics") / "monitoring.config"
    monitoring.write_text(f'prometheus_config {{ enable: true path: "{METRICS_PATH}" }}')
    options = ServerOptions(
        port=-1,
        rest_api_port=-1,
        model_name="m",
        model_base_path=str(half_plus_two_base),
        file_system_poll_wait_seconds=0,
        monitoring_config_file=str(monitoring),
    )
    with ModelServer(options) as srv:
        yield srv


def _predict(name: str) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.inputs["x"].CopyFrom(make_tensor_proto(np.array([1.0], np.float32)))
    return request


def _metrics(server: ModelServer) -> str:
    return httpx.get(f"http://127.0.0.1:{server.rest_port}{METRICS_PATH}", timeout=30).text


def test_random_model_names_share_one_bounded_unknown_series(server: ModelServer) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        stub.Predict(_predict("m"), timeout=30)
        with pytest.raises(grpc.RpcError):
            stub.Predict(_predict("first-unknown"), timeout=30)
        lines_after_one = len(_metrics(server).splitlines())
        names = [f"random-{uuid.uuid4().hex}" for _ in range(300)]
        for name in names:
            with pytest.raises(grpc.RpcError) as err:
                stub.Predict(_predict(name), timeout=30)
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
        http_names = [f"rest-{uuid.uuid4().hex}" for _ in range(50)]
        for name in http_names:
            r = httpx.post(
                f"http://127.0.0.1:{server.rest_port}/v1/models/{name}:predict",
                json={"instances": [1.0]},
                timeout=30,
            )
            assert r.status_code == 404
    text = _metrics(server)
    assert len(text.splitlines()) == lines_after_one, "unknown names added series"
    assert not any(name in text for name in names + http_names)
    assert 'model_name="m"' in text
    count = [
        line
        for line in text.splitlines()
        if line.startswith(":tensorflow:serving:request_count{") and "__unknown__" in line
    ]
    assert len(count) == 1, count
    assert 'status="NOT_FOUND"' in count[0]
    # Every gRPC request for an unknown name is counted there (REST ones fail while typing
    # the JSON by the signature, before the request metrics: they add no series either).
    assert count[0].endswith(f" {1 + len(names)}")
