"""gRPC clients (sync and asyncio) against the embedded server with the bundled models."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from tfsuite.clients.errors import MessageTooLargeError, ServerUnreachableError, ServingClientError
from tfsuite.clients.grpc_client import AsyncTFServingClient, ChannelOptions, TFServingClient
from tfsuite.errors import UsageError

pytestmark = pytest.mark.slow

NOT_FOUND = grpc.StatusCode.NOT_FOUND
INVALID = grpc.StatusCode.INVALID_ARGUMENT
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture(scope="module")
def client(serving: Any) -> Iterator[TFServingClient]:
    with TFServingClient(serving.grpc, call_metadata=[("x-test", "clients")]) as c:
        yield c


def _images(n: int, h: int = 96, w: int = 128) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 255, (n, h, w, 3), dtype=np.uint8)


def _classifier_input(n: int) -> np.ndarray:
    return np.random.default_rng(n).uniform(-1, 1, (n, 224, 224, 3)).astype(np.float32)


def test_predict_detector_by_version_and_label(serving: Any, client: TFServingClient) -> None:
    batch = _images(2)
    for spec in ({"version": 1}, {"label": "weight_quant"}, {}):
        out = client.predict({"image_tensor": batch}, serving.detector, **spec)
        boxes = out["detection_boxes"]
        assert boxes.shape == (2, 100, 4) and boxes.dtype == np.float32
        assert out["detection_scores"].shape == (2, 100) and out["num_detections"].shape == (2,)
        assert ((out["detection_boxes"] >= 0) & (out["detection_boxes"] <= 1)).all()
    only = client.predict(
        {"image_tensor": batch}, serving.detector, version=1, output_filter=["detection_scores"]
    )
    assert set(only) == {"detection_scores"}


def test_metadata_and_status_are_typed(serving: Any, client: TFServingClient) -> None:
    meta = client.metadata(serving.detector, version=1)
    assert meta.name == serving.detector and meta.version == 1
    sig = meta.signature()
    assert sig.inputs["image_tensor"].dtype == "uint8"
    assert sig.inputs["image_tensor"].shape == (None, None, None, 3)
    assert sig.outputs["detection_boxes"].shape == (None, 100, 4)
    assert client.metadata(serving.classifier, label="weight_quant").version == 2
    status = client.status(serving.classifier)
    assert [(s.version, s.state) for s in status] == [(1, "AVAILABLE"), (2, "AVAILABLE")]
    assert client.status(serving.classifier, label="weight_quant")[0].version == 2


def test_async_client_same_answers_as_sync(serving: Any, client: TFServingClient) -> None:
    inputs = [_classifier_input(1) + np.float32(i / 10) for i in range(6)]
    expected = [
        client.predict({"input": x}, serving.classifier, label="weight_quant")["probabilities"]
        for x in inputs
    ]

    async def run() -> list[np.ndarray]:
        async with AsyncTFServingClient(serving.grpc, model=serving.classifier) as aio:
            await aio.wait_ready(10)
            calls = (aio.predict({"input": x}, label="weight_quant") for x in inputs)
            outs = await asyncio.gather(*calls)
            meta = await aio.metadata()
            assert "serving_default" in meta.signatures
            with pytest.raises(ServingClientError) as err:
                await aio.predict({"input": inputs[0]}, version=42)
            assert err.value.code == grpc.StatusCode.NOT_FOUND
            return [o["probabilities"] for o in outs]

    got = asyncio.run(run())
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(e, g)
        assert g.shape == (1, 1000) and abs(float(g.sum()) - 1.0) < 1e-3


@pytest.mark.parametrize(
    ("spec", "code", "message"),
    [
        ({"model": "nope"}, NOT_FOUND, "Servable not found for request: Latest(nope)"),
        (
            {"version": 9},
            NOT_FOUND,
            "Servable not found for request: Specific(ssd_mobilenet_v2_tiny, 9)",
        ),
        ({"label": "trt_fp16"}, INVALID, "Unrecognized servable version label: trt_fp16"),
        ({"signature": "nope"}, PRECONDITION, 'Serving signature key "nope" not found.'),
    ],
)
def test_unknown_model_version_label_signature(
    serving: Any, client: TFServingClient, spec: dict[str, Any], code: grpc.StatusCode, message: str
) -> None:
    spec = {"model": serving.detector, **spec}
    with pytest.raises(ServingClientError) as err:
        client.predict({"image_tensor": _images(1)}, **spec)
    assert err.value.code == code and err.value.message == message
    assert str(err.value) == f"{code.name}: {message}"


def test_wrong_dtype_is_tf_servings_message(serving: Any, client: TFServingClient) -> None:
    with pytest.raises(ServingClientError) as err:
        client.predict({"image_tensor": _images(1).astype(np.float32)}, serving.detector)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "\n" not in str(err.value)


def test_unreachable_server_is_one_line_naming_the_address() -> None:
    with socket.socket() as s:  # a port nothing listens on: bind, read it, close
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    client = TFServingClient(address, model="m", timeout=5)
    with client as c, pytest.raises(ServerUnreachableError) as err:
        c.predict({"x": np.ones(1, np.float32)})
    text = str(err.value)
    assert text.startswith(f"cannot reach TF Serving at {address} (gRPC)") and "\n" not in text
    assert "--server" in text and err.value.code == grpc.StatusCode.UNAVAILABLE


def test_message_too_large_says_which_option(serving: Any) -> None:
    small = TFServingClient(serving.grpc, options=ChannelOptions(max_message_bytes=64 * 1024))
    with small, pytest.raises(MessageTooLargeError) as err:
        small.predict({"image_tensor": _images(1, 200, 200)}, serving.detector)
    assert "max_message_bytes" in str(err.value) and "--max-message-mb" in str(err.value)
    # Receiving: a small request whose answer (1000 floats x 64) is over the limit.
    tiny = TFServingClient(serving.grpc, options=ChannelOptions(max_message_bytes=200 * 1024))
    with tiny, pytest.raises(MessageTooLargeError, match="max_message_bytes"):
        tiny.predict({"input": _classifier_input(64)}, serving.classifier)


def test_version_and_label_together_is_a_usage_error(serving: Any, client: TFServingClient) -> None:
    with pytest.raises(UsageError, match="version or a label"):
        client.predict({"image_tensor": _images(1)}, serving.detector, version=1, label="original")


def test_reload_config_with_the_same_models_keeps_serving(
    serving: Any, client: TFServingClient, detector_base: Path, classifier_base: Path
) -> None:
    from tfsuite.serving_configs.model_config import model_config_for, model_server_config

    config = model_server_config(
        [
            model_config_for(serving.detector, detector_base),
            model_config_for(serving.classifier, classifier_base),
        ]
    )
    assert client.reload_config(config) is None
    assert [s.state for s in client.status(serving.detector)] == ["AVAILABLE", "AVAILABLE"]
    with pytest.raises(UsageError, match="does not parse"):
        client.reload_config("model_config_list { config { nme: 'x' } }")


def test_classify_on_a_predict_signature_reports_the_server_error(
    serving: Any, client: TFServingClient
) -> None:
    # The bundled models have predict signatures only: TF Serving refuses Classify/Regress on
    # them; the client must carry that status, not crash while building or parsing.
    for call in (client.classify, client.regress):
        with pytest.raises(ServingClientError) as err:
            call([{"x": 1.0}], serving.classifier)
        assert err.value.code in (INVALID, PRECONDITION)
