"""Classify / Regress over tf.Example protos (TF1 classification and regression signatures)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pytest

from tfsuite.clients.grpc_client import AsyncTFServingClient, TFServingClient

pytestmark = pytest.mark.slow


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def test_classify_and_regress(tf_example_model_base: Path) -> None:
    from tfsuite.server.app import ModelServer
    from tfsuite.server.options import ServerOptions

    options = ServerOptions(
        port=-1, rest_api_port=0, model_name="ex", model_base_path=str(tf_example_model_base)
    )
    with ModelServer(options) as server:
        address = f"127.0.0.1:{server.grpc_port}"
        with TFServingClient(address, model="ex") as client:
            results = client.classify([{"x": 0.0}, {"x": 2.0}], signature="classify")
            assert [[label for label, _ in r] for r in results] == [["low", "high"]] * 2
            assert results[1][1][1] == pytest.approx(_sigmoid(2.0), rel=1e-5)
            assert results[0][0][1] == pytest.approx(0.5, rel=1e-5)
            values = client.regress([{"x": 1.0}, {"x": np.float32(4.0)}], signature="regress")
            np.testing.assert_allclose(values, [2.5, 4.0])

        async def run() -> list[list[tuple[str, float]]]:
            async with AsyncTFServingClient(address, model="ex") as aio:
                return await aio.classify([{"x": [1.0]}])  # the default signature is the classifier

        (only,) = asyncio.run(run())
        assert only[1] == ("high", pytest.approx(_sigmoid(1.0), rel=1e-5))
