"""REST clients (sync and asyncio) against the embedded server, cross-checked with gRPC."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import grpc
import numpy as np
import pytest

from tfsuite.clients.errors import ServerUnreachableError, ServingClientError
from tfsuite.clients.grpc_client import TFServingClient
from tfsuite.clients.rest_client import AsyncRestClient, RestClient

pytestmark = pytest.mark.slow


def _pixels(n: int) -> np.ndarray:
    return np.random.default_rng(3).uniform(-1, 1, (n, 224, 224, 3)).astype(np.float32)


def test_rest_matches_grpc_in_both_formats(serving: Any) -> None:
    x = _pixels(2)
    with TFServingClient(serving.grpc, model=serving.classifier) as g:
        expected = g.predict({"input": x}, label="weight_quant")["probabilities"]
        grpc_meta = g.metadata(version=1)
        grpc_status = g.status()
    with RestClient(serving.rest, model=serving.classifier) as r:
        for fmt in ("columnar", "row"):
            got = r.predict({"input": x}, label="weight_quant", format=fmt)
            probs = got["probabilities"]
            assert probs.dtype == np.float32 and probs.shape == (2, 1000)
            np.testing.assert_allclose(got["probabilities"], expected, rtol=1e-5, atol=1e-7)
        assert r.metadata(version=1) == grpc_meta
        assert r.status() == grpc_status


def test_rest_detector_multiple_outputs_and_filter(serving: Any) -> None:
    img = np.random.default_rng(0).integers(0, 255, (1, 64, 80, 3), dtype=np.uint8)
    with RestClient(serving.rest, model=serving.detector) as r:
        out = r.predict({"image_tensor": img}, version=1, format="row")
        assert out["detection_boxes"].shape == (1, 100, 4)
        assert out["num_detections"].dtype == np.float32
        only = r.predict({"image_tensor": img}, version=1, output_filter=["detection_scores"])
        assert set(only) == {"detection_scores"}


def test_async_rest_client(serving: Any) -> None:
    x = _pixels(1)

    async def run() -> list[dict[str, np.ndarray]]:
        async with AsyncRestClient(serving.rest, model=serving.classifier) as r:
            calls = (r.predict({"input": x}, version=1) for _ in range(4))
            return list(await asyncio.gather(*calls))

    outs = asyncio.run(run())
    for o in outs[1:]:
        np.testing.assert_array_equal(o["probabilities"], outs[0]["probabilities"])


def test_rest_errors_carry_tf_serving_messages(serving: Any) -> None:
    with RestClient(serving.rest, model=serving.detector) as r:
        with pytest.raises(ServingClientError) as err:
            r.status(label="nope")
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "Unrecognized servable version label: nope" in err.value.message
        with pytest.raises(ServingClientError) as err:
            r.predict({"image_tensor": np.zeros((1, 8, 8, 3), np.uint8)}, model="missing")
        assert err.value.code == grpc.StatusCode.NOT_FOUND and "missing" in err.value.message


def test_rest_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = RestClient(f"127.0.0.1:{port}", model="m", timeout=5)
    with client as r, pytest.raises(ServerUnreachableError) as err:
        r.status()
    assert str(err.value).startswith(f"cannot reach TF Serving at 127.0.0.1:{port} (REST)")
