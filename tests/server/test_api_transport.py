"""gRPC transports and start-up checks: unix socket (--port=0), TLS (--ssl_config_file),
channel arguments, and errors at start."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

import tfsuite.protos  # noqa: F401  (light TF proto import; must precede the pb2 imports)

# isort: split
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tfsuite.clients.codec import make_ndarray, make_tensor_proto
from tfsuite.errors import UsageError
from tfsuite.server.app import ModelServer
from tfsuite.server.grpc_service import parse_channel_arguments
from tfsuite.server.options import ServerOptions, default_thread_count
from tfsuite.serving_configs.errors import ConfigError


def _predict(stub: prediction_service_pb2_grpc.PredictionServiceStub) -> list[float]:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "default"
    request.inputs["x"].CopyFrom(make_tensor_proto(np.array([1.0, 2.0, 5.0], np.float32)))
    return make_ndarray(stub.Predict(request, timeout=30).outputs["y"]).tolist()


def test_unix_socket_only(tmp_path: Path, half_plus_two_base: Path) -> None:
    sock = tmp_path / "tfs.sock"
    options = ServerOptions(
        port=0,
        grpc_socket_path=str(sock),
        model_base_path=str(half_plus_two_base),
        file_system_poll_wait_seconds=0,
    )
    with ModelServer(options) as server:
        assert server.grpc_port == 0 and server.rest_port == 0
        with grpc.insecure_channel(f"unix:{sock}") as channel:
            assert _predict(prediction_service_pb2_grpc.PredictionServiceStub(channel)) == [
                2.5,
                3.0,
                4.5,
            ]


@pytest.mark.skipif(
    shutil.which("openssl") is None, reason="openssl is needed to make a test certificate"
)
def test_tls_from_ssl_config_file(tmp_path: Path, half_plus_two_base: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    ssl_config = tmp_path / "ssl.config"
    # SSLConfig text proto; the PEM contents are strings in the proto.
    ssl_config.write_text(
        f'server_key: "{key.read_text().replace(chr(10), chr(92) + "n")}"\n'
        f'server_cert: "{cert.read_text().replace(chr(10), chr(92) + "n")}"\n'
        "client_verify: false\n"
    )
    options = ServerOptions(
        port=-1,
        ssl_config_file=str(ssl_config),
        model_base_path=str(half_plus_two_base),
        file_system_poll_wait_seconds=0,
    )
    with ModelServer(options) as server:
        creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(
            f"127.0.0.1:{server.grpc_port}",
            creds,
            options=[("grpc.ssl_target_name_override", "localhost")],
        ) as channel:
            assert _predict(prediction_service_pb2_grpc.PredictionServiceStub(channel)) == [
                2.5,
                3.0,
                4.5,
            ]
        # A plaintext client cannot talk to the TLS port.
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            with pytest.raises(grpc.RpcError) as err:
                _predict(prediction_service_pb2_grpc.PredictionServiceStub(channel))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_bad_ssl_config_is_a_config_error_before_loading(
    tmp_path: Path, half_plus_two_base: Path
) -> None:
    bad = tmp_path / "ssl.config"
    bad.write_text("server_key: 3 nonsense {")
    options = ServerOptions(
        port=-1, ssl_config_file=str(bad), model_base_path=str(half_plus_two_base)
    )
    server = ModelServer(options)
    with pytest.raises(ConfigError, match="Invalid protobuf file: .*SSLConfig"):
        server.start()
    # Read before the models: nothing was loaded.
    with pytest.raises(RuntimeError, match="has not run yet"):
        _ = server.core


def test_channel_arguments_parse() -> None:
    assert parse_channel_arguments(
        "grpc.max_concurrent_streams=1000, grpc.primary_user_agent=x"
    ) == [
        ("grpc.max_concurrent_streams", 1000),
        ("grpc.primary_user_agent", "x"),
    ]
    assert parse_channel_arguments("") == []
    with pytest.raises(UsageError, match="not key=value"):
        parse_channel_arguments("grpc.max_concurrent_streams")


def test_channel_arguments_reach_the_server(half_plus_two_base: Path) -> None:
    # One concurrent stream per connection still serves sequential requests.
    options = ServerOptions(
        port=-1,
        model_base_path=str(half_plus_two_base),
        file_system_poll_wait_seconds=0,
        grpc_channel_arguments="grpc.max_concurrent_streams=1",
    )
    with (
        ModelServer(options) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel,
    ):
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        assert _predict(stub) == [2.5, 3.0, 4.5]
        assert _predict(stub) == [2.5, 3.0, 4.5]


def test_batching_parameters_without_enable_batching_fails_at_start(
    half_plus_two_base: Path,
) -> None:
    options = ServerOptions(
        port=-1, model_base_path=str(half_plus_two_base), batching_parameters_file="/b.txt"
    )
    with pytest.raises(UsageError, match="--enable_batching"):
        ModelServer(options)


def test_busy_port_is_a_usage_error(half_plus_two_base: Path) -> None:
    options = ServerOptions(
        port=-1,
        rest_api_port=-1,
        model_base_path=str(half_plus_two_base),
        file_system_poll_wait_seconds=0,
    )
    with ModelServer(options) as first:
        clash = ServerOptions(
            port=-1,
            rest_api_port=first.rest_port,
            model_base_path=str(half_plus_two_base),
            file_system_poll_wait_seconds=0,
        )
        with pytest.raises(UsageError, match="cannot bind REST"):
            ModelServer(clash).start()
        assert first.rest_port > 0  # the first server is unaffected


@pytest.fixture
def slow_batching_server(tmp_path: Path, half_plus_two_base: Path) -> ModelServer:
    """A request waits BATCH_WAIT seconds in an unfilled batch: a slow request without a slow model."""
    params = tmp_path / "batching.txt"
    params.write_text(
        "max_batch_size { value: 1000 } batch_timeout_micros { value: 1500000 } num_batch_threads { value: 1 }"
    )
    options = ServerOptions(
        port=-1,
        rest_api_port=-1,
        model_base_path=str(half_plus_two_base),
        file_system_poll_wait_seconds=0,
        enable_batching=True,
        batching_parameters_file=str(params),
        rest_api_timeout_in_ms=200,
    )
    return ModelServer(options).start()


def test_rest_timeout_and_graceful_drain(slow_batching_server: ModelServer) -> None:
    import httpx

    server = slow_batching_server
    try:
        # REST: the request outlives --rest_api_timeout_in_ms=200 -> 504 with TF Serving's error JSON.
        r = httpx.post(
            f"http://127.0.0.1:{server.rest_port}/v1/models/default:predict",
            json={"instances": [1.0]},
            timeout=30,
        )
        assert r.status_code == 504
        assert r.json() == {"error": "Deadline Exceeded"}
        servable = server.core.manager.serving_map()["default"].latest
        assert servable is not None
        # As documented in --help: the 504 does not cancel the inference, it is still running.
        assert servable.inflight == 1

        # gRPC: a request in flight when stop() is called still completes (drain), new ones fail.
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "default"
        request.inputs["x"].CopyFrom(make_tensor_proto(np.array([4.0], np.float32)))
        pending = stub.Predict.future(request, timeout=60)
        # Wait until the gRPC request sits in the batch next to the timed-out REST one.
        deadline = time.monotonic() + 30
        while servable.inflight < 2:
            assert time.monotonic() < deadline, "the gRPC request never reached the server"
            time.sleep(0.005)
        server.stop(grace=30)
        assert make_ndarray(pending.result().outputs["y"]).tolist() == [4.0]
        with pytest.raises(grpc.RpcError) as err:
            stub.Predict(request, timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        channel.close()
    finally:
        server.stop(0)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            'config { name: "m" base_path: "{base}" } config { name: "m" base_path: "{base}" }',
            "Illegal to list model m multiple times in config list",
        ),
        (
            'config { name: "m" base_path: "relative/m" }',
            "Expected model m to have an absolute path or URI",
        ),
    ],
)
def test_bad_model_config_fails_start_with_tf_serving_message(
    tmp_path: Path, half_plus_two_base: Path, config: str, message: str
) -> None:
    from tfsuite.errors import TFSuiteError

    path = tmp_path / "models.config"
    path.write_text(
        "model_config_list { " + config.replace("{base}", str(half_plus_two_base)) + " }"
    )
    with pytest.raises(TFSuiteError) as err:
        ModelServer(ServerOptions(port=-1, model_config_file=str(path))).start()
    assert message in str(err.value)


def test_version_that_is_not_a_saved_model_is_reported_and_others_serve(
    tmp_path: Path, half_plus_two_base: Path, broken_model_base: Path
) -> None:
    import httpx

    path = tmp_path / "models.config"
    path.write_text(
        "model_config_list { "
        f'config {{ name: "good" base_path: "{half_plus_two_base}" model_platform: "tensorflow" }} '
        f'config {{ name: "broken" base_path: "{broken_model_base}" model_platform: "tensorflow" }} }}'
    )
    options = ServerOptions(
        port=-1,
        rest_api_port=-1,
        model_config_file=str(path),
        file_system_poll_wait_seconds=0,
        max_num_load_retries=0,
    )
    with ModelServer(options) as server:
        base = f"http://127.0.0.1:{server.rest_port}/v1/models"
        status = httpx.get(f"{base}/broken", timeout=30).json()["model_version_status"][0]
        assert status["state"] == "END"
        assert status["status"]["error_code"] != "OK" and status["status"]["error_message"]
        r = httpx.post(f"{base}/broken:predict", json={"instances": [1.0]}, timeout=30)
        assert r.status_code == 404
        r = httpx.post(f"{base}/good:predict", json={"instances": [1.0]}, timeout=30)
        assert r.json() == {"predictions": [2.5]}


def test_batching_default_threads_let_a_batch_fill_beyond_4x_cores(
    tmp_path: Path, half_plus_two_base: Path
) -> None:
    # More concurrent requests than TF Serving's 4 x cores thread default, one batch exactly
    # that big and a timeout far beyond the RPC deadline: the batch can only form if the
    # batching-aware --grpc_max_threads default lets every request in at once.
    size = default_thread_count() + 4
    params = tmp_path / "batching.txt"
    params.write_text(
        f"max_batch_size {{ value: {size} }} batch_timeout_micros {{ value: 600000000 }} "
        "num_batch_threads { value: 1 }"
    )
    options = ServerOptions(
        port=-1,
        model_base_path=str(half_plus_two_base),
        file_system_poll_wait_seconds=0,
        enable_batching=True,
        batching_parameters_file=str(params),
    )
    with ModelServer(options) as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            futures = []
            for i in range(size):
                request = predict_pb2.PredictRequest()
                request.model_spec.name = "default"
                request.inputs["x"].CopyFrom(make_tensor_proto(np.array([i], np.float32)))
                futures.append(stub.Predict.future(request, timeout=60))
            results = [make_ndarray(f.result().outputs["y"]).tolist() for f in futures]
        assert results == [[i / 2 + 2] for i in range(size)]
        batches = server.core.metrics.processed_batch_size  # one sample per batch run
        assert (batches.count(("default", "1")), batches.sum(("default", "1"))) == (1, size)
