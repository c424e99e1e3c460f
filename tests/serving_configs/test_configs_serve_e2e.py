"""End to end: files written by `tfsuite configs` (+ warmup records) drive the embedded server.

A tiny two-version model with a variants.json, configs written by the CLI, then a real
ModelServer on ephemeral ports reads models.config, batching_parameters.txt,
monitoring.config and the warmup records, and answers over REST by variant label.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from tensorflow_serving.apis import predict_pb2

from tfsuite.clients.codec import make_tensor_proto
from tfsuite.export.manifest import VariantsManifest
from tfsuite.serving_configs.cli import configs
from tfsuite.serving_configs.warmup import read_warmup_requests, write_warmup_requests

pytestmark = pytest.mark.slow

NAME = "affine"


def _save_affine(path: Path, offset: float) -> None:
    import tensorflow as tf

    class Affine(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def predict(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": 0.5 * x + offset}

    module = Affine()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.predict})


@pytest.fixture(scope="module")
def models_dir(
    tmp_path_factory: pytest.TempPathFactory, make_manifest: Callable[..., VariantsManifest]
) -> Path:
    out = tmp_path_factory.mktemp("configs_e2e")
    base = out / NAME
    for version, offset in ((1, 2.0), (2, 3.0)):
        _save_affine(base / str(version), offset)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = NAME
        request.inputs["x"].CopyFrom(make_tensor_proto(np.array([1.0, 2.0], dtype=np.float32)))
        write_warmup_requests(base / str(version), [request])
    statuses = {"original": (1, "ok"), "weight_quant": (2, "ok"), "trt_fp16": (3, "skipped")}
    make_manifest(NAME, statuses, source_format="saved_model").save(base)
    result = CliRunner().invoke(
        configs,
        [
            "--base-path", str(base), "--out", str(out),
            "--max-batch-size", "4", "--allowed-batch-sizes", "2,4",
            "--batch-timeout-micros", "1000", "--num-batch-threads", "1",
            "--metrics-path", "/metrics",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def http(models_dir: Path) -> Iterator[httpx.Client]:
    from tfsuite.server.app import ModelServer
    from tfsuite.server.options import ServerOptions

    options = ServerOptions(
        port=-1,
        rest_api_port=-1,
        model_config_file=str(models_dir / "models.config"),
        enable_batching=True,
        batching_parameters_file=str(models_dir / "batching_parameters.txt"),
        monitoring_config_file=str(models_dir / "monitoring.config"),
        file_system_poll_wait_seconds=0,
    )
    with (
        ModelServer(options) as server,
        httpx.Client(base_url=f"http://127.0.0.1:{server.rest_port}", timeout=30) as client,
    ):
        yield client


def test_warmup_records_written_for_each_version(models_dir: Path) -> None:
    for version in (1, 2):
        (log,) = read_warmup_requests(models_dir / NAME / str(version))
        assert log.predict_log.request.model_spec.name == NAME


def test_both_variants_available(http: httpx.Client) -> None:
    status = http.get(f"/v1/models/{NAME}").json()["model_version_status"]
    assert sorted((s["version"], s["state"]) for s in status) == [
        ("1", "AVAILABLE"),
        ("2", "AVAILABLE"),
    ]


@pytest.mark.parametrize(
    ("label", "expected"), [("original", [2.5, 3.0]), ("weight_quant", [3.5, 4.0])]
)
def test_predict_by_variant_label(http: httpx.Client, label: str, expected: list[float]) -> None:
    reply = http.post(f"/v1/models/{NAME}/labels/{label}:predict", json={"instances": [1.0, 2.0]})
    assert reply.status_code == 200, reply.text
    assert reply.json()["predictions"] == pytest.approx(expected)


def test_batching_file_applied(http: httpx.Client) -> None:
    reply = http.post(f"/v1/models/{NAME}:predict", json={"instances": [1.0] * 5})
    assert reply.status_code == 400
    error = json.loads(reply.text)["error"]
    assert "Task size 5 is larger than maximum input batch size 4" in error


def test_monitoring_file_applied(http: httpx.Client) -> None:
    reply = http.get("/metrics")
    assert reply.status_code == 200
    assert ":tensorflow:serving:request_count" in reply.text
