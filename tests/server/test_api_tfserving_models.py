"""TF Serving's own test models, served as a user following TF Serving's docs serves them:
``tfsuite serve --model_base_path=<saved_model_half_plus_two_cpu>`` (version dir
``00000123``), a launcher that only waits for the gRPC port, the REST row and columnar
forms, version labels, ReloadConfig, and an unparseable ``--model_config_file``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

import tfsuite.protos  # noqa: F401  (light TF proto import; must precede the pb2 imports)

# isort: split
from google.protobuf import text_format
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

START_TIMEOUT = 120.0


def _free_port() -> int:
    # What TF Serving's own tests do (PickUnusedPortOrDie): ask the kernel, then hand it on.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(proc: subprocess.Popen[str], port: int) -> None:
    """A launcher's readiness check: the port accepts a connection (nothing else is read)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)  # polling a port is the launcher's contract under test
    pytest.fail(f"port {port} never opened")


def _predict_x(value: np.ndarray) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "default"
    request.inputs["x"].CopyFrom(make_tensor_proto(value))
    return request


@pytest.mark.slow
def test_serve_half_plus_two_00000123_ready_when_the_grpc_port_opens(
    tfserving_testdata: dict[str, Path],
) -> None:
    port, rest_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tfsuite",
            "serve",
            f"--port={port}",
            f"--rest_api_port={rest_port}",
            "--model_name=default",
            f"--model_base_path={tfserving_testdata['half_plus_two']}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0", "COLUMNS": "200"},
    )
    try:
        _wait_for_port(proc, port)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            # The first request after the port opens already finds the model AVAILABLE.
            status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
                get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "default"}),
                timeout=30,
            )
            assert [(s.version, s.state) for s in status.model_version_status] == [
                (123, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
            ]
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            response = stub.Predict(_predict_x(np.array([2.0], np.float32)), timeout=30)
        assert [d.size for d in response.outputs["y"].tensor_shape.dim] == [1]
        assert make_ndarray(response.outputs["y"]).tolist() == [3.0]
        assert response.model_spec.version.value == 123
        r = httpx.post(
            f"http://127.0.0.1:{rest_port}/v1/models/default:predict",
            json={"instances": [1.0, 2.0, 5.0]},
            timeout=30,
        )
        assert r.json() == {"predictions": [2.5, 3.0, 4.5]}
    finally:
        proc.terminate()
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    # TF Serving's order: the model loads, then the ports open and are announced.
    loaded = output.index("Successfully loaded servable version {name: default version: 123}")
    assert loaded < output.index(f"Running gRPC ModelServer at 127.0.0.1:{port} ...")
    assert output.index(f"Exporting HTTP/REST API at:127.0.0.1:{rest_port} ...") > loaded
    assert "Unable to create a python object" not in output
    assert "reference variable" not in output


def test_unparseable_model_config_file_exits_with_tf_servings_message(tmp_path: Path) -> None:
    config = tmp_path / "bad_model_config.txt"
    config.write_text('model_config_list {\n  config {\n    name: "m"\n    bogus: 1\n  }\n}\n')
    proc = subprocess.run(
        [sys.executable, "-m", "tfsuite", "serve", "--port=-1", f"--model_config_file={config}"],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert (
        f"error: Invalid protobuf file: '{config}': Error parsing text-format "
        'tensorflow.serving.ModelServerConfig: 4:5: Message type "tensorflow.serving.ModelConfig" '
        'has no field named "bogus".'
    ) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Running gRPC ModelServer" not in proc.stderr + proc.stdout


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, tfserving_testdata: dict[str, Path]
) -> Iterator[ModelServer]:
    """half_plus_two (both versions, labelled) and half_plus_three, in-process."""
    config = tmp_path_factory.mktemp("tfs_config") / "models.config"
    config.write_text(
        "model_config_list { "
        f'config {{ name: "hp2" base_path: "{tfserving_testdata["two_versions"]}" '
        'model_platform: "tensorflow" model_version_policy { all {} } '
        'version_labels { key: "stable" value: 123 } '
        'version_labels { key: "canary" value: 124 } } '
        f'config {{ name: "hp3" base_path: "{tfserving_testdata["half_plus_three"]}" '
        'model_platform: "tensorflow" } }'
    )
    options = ServerOptions(
        port=-1, rest_api_port=-1, model_config_file=str(config), file_system_poll_wait_seconds=0
    )
    with ModelServer(options) as server:
        yield server


@pytest.fixture(scope="module")
def http(served: ModelServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{served.rest_port}", timeout=30) as client:
        yield client


def test_rest_row_and_columnar_forms(http: httpx.Client) -> None:
    r = http.post("/v1/models/hp3:predict", json={"instances": [1.0, 2.0, 5.0]})
    assert r.json() == {"predictions": [3.5, 4.0, 5.5]}
    r = http.post("/v1/models/hp3:predict", json={"instances": [[1.0], [2.0]]})  # x as [?,1]
    assert r.json() == {"predictions": [[3.5], [4.0]]}
    r = http.post("/v1/models/hp3:predict", json={"inputs": {"x": [1.0, 2.0, 5.0]}})
    assert r.json() == {"outputs": [3.5, 4.0, 5.5]}
    r = http.post("/v1/models/hp3:predict", json={"inputs": [[2.0]]})
    assert r.json() == {"outputs": [[4.0]]}
    r = http.post(
        "/v1/models/hp2/labels/stable:regress",
        json={"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]},
    )
    assert r.json() == {"results": [3.0]}


def test_rest_status_and_labels(http: httpx.Client) -> None:
    status = http.get("/v1/models/hp2").json()["model_version_status"]
    assert [(s["version"], s["state"]) for s in status] == [
        ("124", "AVAILABLE"),
        ("123", "AVAILABLE"),
    ]
    for label, version in (("stable", 123), ("canary", 124)):
        r = http.post(f"/v1/models/hp2/labels/{label}:predict", json={"instances": [2.0]})
        assert r.json() == {"predictions": [3.0]}
        r = http.post(f"/v1/models/hp2/versions/{version}:predict", json={"inputs": [2.0]})
        assert r.json() == {"outputs": [3.0]}


def test_grpc_reload_config_to_the_other_layout(tfserving_testdata: dict[str, Path]) -> None:
    options = ServerOptions(
        port=-1,
        model_name="default",
        model_base_path=str(tfserving_testdata["two_versions"]),
        file_system_poll_wait_seconds=0,
    )
    with (
        ModelServer(options) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
    ):
        models = model_service_pb2_grpc.ModelServiceStub(channel)
        request = model_management_pb2.ReloadConfigRequest()
        text_format.Parse(
            tfserving_testdata["good_model_config"].read_text(), request.config
        )  # half_plus_two (00000123 only) + half_plus_three
        assert models.HandleReloadConfigRequest(request, timeout=60).status.error_code == 0
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for name, y in (("half_plus_two", 3.0), ("half_plus_three", 4.0)):
            req = _predict_x(np.array([2.0], np.float32))
            req.model_spec.name = name
            response = stub.Predict(req, timeout=30)
            assert make_ndarray(response.outputs["y"]).tolist() == [y]
            assert response.model_spec.version.value == 123
        with pytest.raises(grpc.RpcError) as err:
            stub.Predict(_predict_x(np.array([2.0], np.float32)), timeout=30)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
