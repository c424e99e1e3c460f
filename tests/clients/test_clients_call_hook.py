"""The clients' one call hook: every gRPC (sync, asyncio) and REST call reports itself."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest

from tfsuite.clients import AsyncRestClient, AsyncTFServingClient, RestClient, TFServingClient
from tfsuite.clients.errors import ServingClientError
from tfsuite.clients.hooks import CallEvent
from tfsuite.clients.rpcs import predict_rpc, predict_rpc_encoded

IMAGE = np.zeros((1, 64, 64, 3), np.uint8)


def test_sync_grpc_hook_reports_predict_with_sizes_and_served_version(serving) -> None:
    events: list[CallEvent] = []
    with TFServingClient(serving.grpc, model=serving.detector, call_hooks=[events.append]) as c:
        c.predict({"image_tensor": IMAGE}, label="weight_quant")
        c.metadata(version=1)
    predict, meta = events
    assert (predict.api, predict.method, predict.model) == ("grpc", "Predict", serving.detector)
    assert predict.label == "weight_quant" and predict.version is None
    assert predict.reply_version == 2  # the label's version, from the reply's model_spec
    assert predict.exception is None and predict.code == "OK"
    assert predict.request_bytes > IMAGE.nbytes and predict.response_bytes > 0
    assert 0 < predict.seconds < 30
    assert meta.method == "GetModelMetadata" and meta.version == 1 and meta.reply_version == 1


def test_sync_grpc_hook_reports_failures_with_their_code(serving) -> None:
    events: list[CallEvent] = []
    with (
        TFServingClient(serving.grpc, call_hooks=[events.append]) as c,
        pytest.raises(ServingClientError),
    ):
        c.predict({"image_tensor": IMAGE}, serving.detector, version=99)
    (event,) = events
    assert event.code == "NOT_FOUND" and event.response_bytes == 0
    assert isinstance(event.exception, ServingClientError)


def test_async_grpc_hook_and_prebuilt_rpc(serving) -> None:
    events: list[CallEvent] = []
    wire = predict_rpc({"image_tensor": IMAGE}, serving.detector, version=1).request

    async def run() -> None:
        async with AsyncTFServingClient(serving.grpc, call_hooks=[events.append]) as c:
            reply = await c.send(predict_rpc_encoded(wire, serving.detector, version=1))
            assert reply.model_spec.version.value == 1  # raw PredictResponse, not decoded

    asyncio.run(run())
    (event,) = events
    assert event.version == 1 and event.reply_version == 1 and event.request_bytes == len(wire)


def test_rest_hooks_sync_and_async_count_every_exchange(serving) -> None:
    events: list[CallEvent] = []
    with RestClient(serving.rest, model=serving.detector, call_hooks=[events.append]) as c:
        c.predict({"image_tensor": IMAGE}, version=2)  # metadata + predict: one event
        with pytest.raises(ServingClientError):
            c.status(version=99)

    async def run() -> None:
        async with AsyncRestClient(serving.rest, model=serving.detector) as c:
            c.call_hooks.append(events.append)
            await c.status(version=1)

    asyncio.run(run())
    predict, missing, status = events
    assert predict.api == "rest" and predict.method == "Predict" and predict.version == 2
    assert predict.request_bytes > 0 and predict.response_bytes > 0
    assert missing.exception is not None and missing.code == grpc.StatusCode.NOT_FOUND.name
    assert status.method == "GetModelStatus" and status.exception is None
