"""``tfsuite serve`` as a process, launched like ``tensorflow_model_server`` (the process boundary matters:
start-up lines, signals, exit code)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

import tfsuite.protos  # noqa: F401  (light TF proto import; must precede the pb2 imports)

# isort: split
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tfsuite.clients.codec import make_ndarray, make_tensor_proto
from tfsuite.server.app import ModelServer
from tfsuite.server.options import ServerOptions

GRPC_LINE = re.compile(r"Running gRPC ModelServer at (?P<host>[\w.:]+):(?P<port>\d+) \.\.\.")
START_TIMEOUT = 120.0


@pytest.mark.slow
def test_serve_subprocess_tf_serving_flags_predict_and_sigterm(
    half_plus_two_base: Path, launch_serve
) -> None:
    flags = [
        "--port=-1",
        "--rest_api_port",
        "-1",
        "--model_name=default",
        f"--model_base_path={half_plus_two_base}",
        "--enable_model_warmup=false",
        "--file_system_poll_wait_seconds=0",
        "--per_process_gpu_memory_fraction=0.5",
    ]
    with launch_serve(flags) as served:
        assert any("per_process_gpu_memory_fraction" in s and "ignored" in s for s in served.output)

        with grpc.insecure_channel(f"127.0.0.1:{served.grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "default"
            request.inputs["x"].CopyFrom(make_tensor_proto(np.array([1.0, 2.0, 5.0], np.float32)))
            response = stub.Predict(request, timeout=30)
        np.testing.assert_allclose(make_ndarray(response.outputs["y"]), [2.5, 3.0, 4.5])
        assert response.model_spec.version.value == 1

        r = httpx.post(
            f"http://127.0.0.1:{served.rest_port}/v1/models/default:predict",
            json={"instances": [1.0, 2.0, 5.0]},
            timeout=30,
        )
        assert r.json() == {"predictions": [2.5, 3.0, 4.5]}

        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(timeout=60) == 0


def test_serve_subprocess_bad_flag_exits_nonzero_with_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tfsuite", "serve", "--model_bas_path=/m"],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        timeout=120,
    )
    assert proc.returncode != 0
    assert "error: unknown flag --model_bas_path (did you mean --model_base_path?)" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_run_forever_serves_until_signal_then_stops_and_restores_handlers(
    sig: signal.Signals, half_plus_two_base: Path
) -> None:
    # In-process (cheaper than a subprocess per signal): run_forever is what `tfsuite serve`
    # runs in the foreground; the signal comes once the start-up line is announced.
    announced: queue.Queue[str] = queue.Queue()
    server = ModelServer(
        ServerOptions(
            port=-1, model_base_path=str(half_plus_two_base), file_system_poll_wait_seconds=0
        ),
        announce=announced.put,
    )
    answers: list[list[float]] = []

    def client_then_signal() -> None:
        line = announced.get(timeout=START_TIMEOUT)  # no line: start failed, no signal to send
        try:
            port = int(GRPC_LINE.search(line)["port"])  # type: ignore[index]
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                request = predict_pb2.PredictRequest()
                request.model_spec.name = "default"
                request.inputs["x"].CopyFrom(make_tensor_proto(np.array([1.0], np.float32)))
                response = stub.Predict(request, timeout=30)
                answers.append(make_ndarray(response.outputs["y"]).tolist())
        finally:
            os.kill(os.getpid(), sig)

    before = signal.getsignal(sig)
    thread = threading.Thread(target=client_then_signal)
    thread.start()
    server.run_forever(grace=5)
    thread.join(30)
    assert answers == [[2.5]]
    assert server.wait(0)  # stopped
    assert signal.getsignal(sig) is before
