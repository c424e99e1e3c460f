"""A TF-Serving-compatible gRPC server whose Predict takes a fixed, known time per version.

For calibrating the load generator the way one calibrates an instrument: version 1 answers
at once, version 2 spins for exactly ``delay_us`` before answering (a busy wait: a sleep's
wake-up jitter on a shared machine is larger than the resolution being checked). The
difference of the two versions' p50 is then ``delay_us`` plus nothing the client adds, so
a recorder that rounds to milliseconds cannot see it and one that keeps microseconds must.
Real protos (tensorflow-serving-api), real gRPC, port 0; no TensorFlow.
"""

from __future__ import annotations

import time
from concurrent import futures
from typing import Any

import grpc
import numpy as np
from typing_extensions import Self

import tfsuite.protos  # noqa: F401

# isort: split
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
)

from tfsuite.clients.codec import make_tensor_proto

MODEL = "fixed"


class FixedLatencyServer:
    """``with FixedLatencyServer({1: 0, 2: 300}) as srv:`` -> ``srv.address``."""

    def __init__(self, delays_us: dict[int, float]) -> None:
        self.delays_us = delays_us
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers([self._prediction(), self._model()])
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._answer = make_tensor_proto(np.zeros((1, 4), np.float32))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None)

    def _version(self, spec: Any, context: grpc.ServicerContext) -> int:
        if spec.HasField("version_label"):  # it has no labels, as TF Serving without any
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: Specific({spec.name}, {spec.version_label})",
            )
        version = int(spec.version.value) if spec.HasField("version") else max(self.delays_us)
        if spec.name != MODEL or version not in self.delays_us:
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: Specific({spec.name}, {version})",
            )
        return version

    def _predict(self, request: Any, context: grpc.ServicerContext) -> Any:
        version = self._version(request.model_spec, context)
        until = time.perf_counter() + self.delays_us[version] / 1e6
        while time.perf_counter() < until:
            pass
        response = predict_pb2.PredictResponse()
        response.model_spec.name = MODEL
        response.model_spec.version.value = version
        response.outputs["y"].CopyFrom(self._answer)
        return response

    def _metadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        version = self._version(request.model_spec, context)
        sig = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
        for alias, kind in (("x", sig.inputs), ("y", sig.outputs)):
            info = kind[alias]
            info.name, info.dtype = f"{alias}:0", types_pb2.DT_FLOAT
            info.tensor_shape.dim.add(size=-1)
            info.tensor_shape.dim.add(size=4)
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        sig_map.signature_def["serving_default"].CopyFrom(sig)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = MODEL
        response.model_spec.version.value = version
        response.metadata["signature_def"].Pack(sig_map)
        return response

    def _status(self, request: Any, context: grpc.ServicerContext) -> Any:
        response = get_model_status_pb2.GetModelStatusResponse()
        for version in sorted(self.delays_us):
            status = response.model_version_status.add(version=version)
            status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response

    def _prediction(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            "tensorflow.serving.PredictionService",
            {
                "Predict": _unary(self._predict, predict_pb2.PredictRequest),
                "GetModelMetadata": _unary(
                    self._metadata, get_model_metadata_pb2.GetModelMetadataRequest
                ),
            },
        )

    def _model(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            "tensorflow.serving.ModelService",
            {"GetModelStatus": _unary(self._status, get_model_status_pb2.GetModelStatusRequest)},
        )


def _unary(handler: Any, request_class: Any) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        handler,
        request_deserializer=request_class.FromString,
        response_serializer=lambda m: m.SerializeToString(),
    )
