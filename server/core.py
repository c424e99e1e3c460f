"""``ServerCore``: TF Serving's request/response messages over the numpy-level ``DataPlane``.

Both protocol adapters hand the core TF Serving's own messages (gRPC receives them; REST
builds them from JSON, as TF Serving's HTTP handler does) and get messages back, so the
translation between ``TensorProto`` / ``tf.Example`` inputs and numpy lives here once:

    predict(PredictRequest) -> PredictResponse
    classify(ClassificationRequest) -> ClassificationResponse
    regress(RegressionRequest) -> RegressionResponse
    multi_inference(MultiInferenceRequest) -> MultiInferenceResponse
    get_model_metadata(GetModelMetadataRequest) -> GetModelMetadataResponse
    get_model_status(GetModelStatusRequest) -> GetModelStatusResponse
    reload_config(ReloadConfigRequest) -> ReloadConfigResponse

Each request method takes ``entrypoint="GRPC"|"REST"`` for the request_latency label.
Errors are ``ServingError`` with TF Serving's code and text. Warmup records
(``assets.extra/tf_serving_warmup_requests``) are replayed here too, since they are the
same messages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
import numpy as np

import tfsuite.protos  # noqa: F401

# isort: split
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    input_pb2,
    model_management_pb2,
    predict_pb2,
    regression_pb2,
)
from tensorflow_serving.apis.model_pb2 import ModelSpec

from tfsuite.clients.codec import CodecError, decoded_nbytes, make_ndarray, make_tensor_proto
from tfsuite.server.dataplane import ClassifyResult, DataPlane, RequestSpec
from tfsuite.server.errors import ServingError
from tfsuite.server.metrics import ServerMetrics
from tfsuite.server.options import ServerOptions
from tfsuite.server.servable import DEFAULT_SIGNATURE, Servable
from tfsuite.serving_configs.batching import BatchingOptions
from tfsuite.serving_configs.errors import ConfigError
from tfsuite.serving_configs.warmup import read_warmup_requests

__all__ = ["ServerCore", "examples_from_input", "spec_from_proto"]

_ExampleResponse = TypeVar(
    "_ExampleResponse",
    classification_pb2.ClassificationResponse,
    regression_pb2.RegressionResponse,
)

log = logging.getLogger(__name__)

_STATE_ENUM = {
    "START": get_model_status_pb2.ModelVersionStatus.START,
    "LOADING": get_model_status_pb2.ModelVersionStatus.LOADING,
    "AVAILABLE": get_model_status_pb2.ModelVersionStatus.AVAILABLE,
    "UNLOADING": get_model_status_pb2.ModelVersionStatus.UNLOADING,
    "END": get_model_status_pb2.ModelVersionStatus.END,
}


def spec_from_proto(model_spec: ModelSpec) -> RequestSpec:
    """``ModelSpec`` -> ``RequestSpec`` (empty signature_name means serving_default)."""
    which = model_spec.WhichOneof("version_choice")
    return RequestSpec(
        name=model_spec.name,
        version=model_spec.version.value if which == "version" else None,
        label=model_spec.version_label if which == "version_label" else None,
        signature_name=model_spec.signature_name or DEFAULT_SIGNATURE,
    )


def _echo_spec(out: ModelSpec, spec: RequestSpec, version: int) -> None:
    out.name = spec.name
    out.version.value = version
    out.signature_name = spec.signature_name


def examples_from_input(inp: input_pb2.Input) -> list[bytes]:
    """Serialized tf.Examples of an ``Input`` (context features merged into each example)."""
    which = inp.WhichOneof("kind")
    if which == "example_list":
        return [ex.SerializeToString() for ex in inp.example_list.examples]
    if which == "example_list_with_context":
        ctx = inp.example_list_with_context.context
        out = []
        for ex in inp.example_list_with_context.examples:
            merged = example_pb2.Example()
            merged.CopyFrom(ctx)
            merged.MergeFrom(ex)  # the example's own features win over the context's
            out.append(merged.SerializeToString())
        return out
    return []


def _decode_inputs(
    request: predict_pb2.PredictRequest, max_decoded_bytes: int | None = None
) -> dict[str, np.ndarray]:
    """The request's tensors as numpy, each shape checked and the total size bounded first.

    Errors are TF Serving's ``tensor parsing error: ALIAS`` with TensorFlow's reason. The
    tensors may decode to at most ``max(max_decoded_bytes, their serialized size)`` bytes
    (None: no bound; warmup records are the model's own).
    """
    inputs = request.inputs
    alias = ""
    try:
        if max_decoded_bytes is not None:
            limit: int | None = None  # the serialized size is only worth computing past the flag
            total = 0
            for alias, tensor in inputs.items():
                total += decoded_nbytes(tensor)
                if total > max_decoded_bytes and limit is None:
                    limit = max(max_decoded_bytes, sum(t.ByteSize() for t in inputs.values()))
                if limit is not None and total > limit:
                    raise CodecError(
                        f"the request's tensors would decode to more than {limit} bytes "
                        f"({total} so far), the limit of this server (--max_decoded_tensor_bytes)"
                    )
        decoded = {}
        for alias, tensor in inputs.items():
            decoded[alias] = make_ndarray(tensor)
        return decoded
    except CodecError as err:
        raise ServingError.invalid_argument(f"tensor parsing error: {alias}: {err}") from None


def _fill_classification(
    out: classification_pb2.ClassificationResult, result: ClassifyResult
) -> None:
    scores = result.scores
    for i in range(result.num_examples):
        row = out.classifications.add()
        for j in range(result.num_classes):
            cls = row.classes.add()
            if result.classes is not None:
                cls.label = result.label(i, j)
            if scores is not None:
                cls.score = float(scores[i, j])


def _fill_regression(out: regression_pb2.RegressionResult, values: np.ndarray) -> None:
    for v in values.tolist():
        out.regressions.add().value = v


class ServerCore:
    """The embedded server's protocol-independent core (see module docstring)."""

    def __init__(self, options: ServerOptions, metrics: ServerMetrics | None = None) -> None:
        self.options = options
        self.dataplane = DataPlane(options, metrics, warmup=replay_warmup)
        self.metrics = self.dataplane.metrics
        self.manager = self.dataplane.manager

    @property
    def batching_options(self) -> BatchingOptions | None:
        """The server-wide batching options (None when batching is off)."""
        return self.dataplane.batching_options

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Load the models; returns once the initial versions are loaded (or failed)."""
        self.dataplane.start()

    def stop(self, drain_seconds: float = 30.0) -> None:
        self.dataplane.stop(drain_seconds)

    close = stop

    def __enter__(self) -> ServerCore:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- PredictionService ------------------------------------------------------------------
    def predict(
        self, request: predict_pb2.PredictRequest, *, entrypoint: str = "GRPC"
    ) -> predict_pb2.PredictResponse:
        spec = spec_from_proto(request.model_spec)
        version, outputs = self.dataplane.predict(
            spec,
            _decode_inputs(request, self.options.max_decoded_tensor_bytes),
            tuple(request.output_filter),
            entrypoint=entrypoint,
        )
        response = predict_pb2.PredictResponse()
        _echo_spec(response.model_spec, spec, version)
        for alias, arr in outputs.items():
            response.outputs[alias].CopyFrom(make_tensor_proto(arr))
        return response

    def classify(
        self, request: classification_pb2.ClassificationRequest, *, entrypoint: str = "GRPC"
    ) -> classification_pb2.ClassificationResponse:
        return self._examples_call(
            request,
            self.dataplane.classify,
            classification_pb2.ClassificationResponse(),
            _fill_classification,
            entrypoint,
        )

    def regress(
        self, request: regression_pb2.RegressionRequest, *, entrypoint: str = "GRPC"
    ) -> regression_pb2.RegressionResponse:
        return self._examples_call(
            request,
            self.dataplane.regress,
            regression_pb2.RegressionResponse(),
            _fill_regression,
            entrypoint,
        )

    @staticmethod
    def _examples_call(
        request: Any,
        run: Callable[..., tuple[int, Any]],
        response: _ExampleResponse,
        fill: Callable[[Any, Any], None],
        entrypoint: str,
    ) -> _ExampleResponse:
        """Classify and Regress: tf.Examples in, ``run`` on the dataplane, ``fill`` the result."""
        spec = spec_from_proto(request.model_spec)
        version, result = run(spec, examples_from_input(request.input), entrypoint=entrypoint)
        _echo_spec(response.model_spec, spec, version)
        fill(response.result, result)
        return response

    def multi_inference(
        self, request: inference_pb2.MultiInferenceRequest, *, entrypoint: str = "GRPC"
    ) -> inference_pb2.MultiInferenceResponse:
        tasks = [(spec_from_proto(t.model_spec), t.method_name) for t in request.tasks]
        version, results = self.dataplane.multi_inference(
            tasks, examples_from_input(request.input), entrypoint=entrypoint
        )
        response = inference_pb2.MultiInferenceResponse()
        for (spec, _method), result in zip(tasks, results):
            out = response.results.add()
            _echo_spec(out.model_spec, spec, version)
            if isinstance(result, ClassifyResult):
                _fill_classification(out.classification_result, result)
            else:
                _fill_regression(out.regression_result, result)
        return response

    def get_model_metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, *, entrypoint: str = "GRPC"
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        spec = spec_from_proto(request.model_spec)
        version, sigmap = self.dataplane.get_model_metadata(spec, tuple(request.metadata_field))
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = spec.name
        response.model_spec.version.value = version
        response.metadata["signature_def"].Pack(sigmap)
        return response

    # -- ModelService -----------------------------------------------------------------------
    def get_model_status(
        self, request: get_model_status_pb2.GetModelStatusRequest, *, entrypoint: str = "GRPC"
    ) -> get_model_status_pb2.GetModelStatusResponse:
        spec = spec_from_proto(request.model_spec)
        rows = self.dataplane.get_model_status(spec.name, spec.version, spec.label)
        response = get_model_status_pb2.GetModelStatusResponse()
        for row in rows:
            out = response.model_version_status.add()
            out.version = row.version
            out.state = _STATE_ENUM[row.state]
            out.status.error_code = row.error_code.value[0]
            out.status.error_message = row.error_message
        return response

    def reload_config(
        self, request: model_management_pb2.ReloadConfigRequest, *, entrypoint: str = "GRPC"
    ) -> model_management_pb2.ReloadConfigResponse:
        """Replace the model config; a failure is the RPC's status (a ``ServingError``).

        As TF Serving's ModelServiceImpl: a request without a ``model_config_list`` (an empty
        or zero-byte request) is INVALID_ARGUMENT and changes nothing.
        """
        try:
            if self.options.disable_model_service_reload:
                raise ServingError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "HandleReloadConfigRequest is disabled on this server "
                    "(--disable_model_service_reload)",
                )
            if request.config.WhichOneof("config") != "model_config_list":
                raise ServingError.invalid_argument(
                    "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                    "Only ModelConfigList is currently supported"
                )
            self.dataplane.reload_config(request.config)
        except ServingError as err:
            log.error("ReloadConfig failed: %s", err.message)  # TF Serving's log line
            raise
        response = model_management_pb2.ReloadConfigResponse()
        response.status.error_code = 0  # present and OK, as TF Serving answers
        return response


# -- warmup ------------------------------------------------------------------------------------
def replay_warmup(dataplane: DataPlane, servable: Servable) -> None:
    """Replay ``assets.extra/tf_serving_warmup_requests`` on a freshly loaded servable.

    Any failing record fails the load (TF Serving's rule); records are replayed
    ``num_request_iterations_for_warmup`` times.
    """
    try:
        logs = read_warmup_requests(servable.path)
    except ConfigError as err:
        raise ServingError.invalid_argument(str(err)) from None
    if not logs:
        return
    start = time.perf_counter()
    iterations = max(1, dataplane.options.num_request_iterations_for_warmup)
    for _ in range(iterations):
        for record in logs:
            _replay(dataplane, servable, record)
    log.info(
        "Finished reading warmup data for model at %s. Number of warmup records read: %d. "
        "Elapsed time (microseconds): %d.",
        servable.path,
        len(logs) * iterations,
        (time.perf_counter() - start) * 1e6,
    )


def _replay(dataplane: DataPlane, servable: Servable, record: Any) -> None:
    kind = record.WhichOneof("log_type")
    if kind == "predict_log":
        req = record.predict_log.request
        dataplane.predict_on(
            servable,
            req.model_spec.signature_name or DEFAULT_SIGNATURE,
            _decode_inputs(req),
            tuple(req.output_filter),
        )
    elif kind == "classify_log":
        req = record.classify_log.request
        dataplane.classify_on(
            servable,
            req.model_spec.signature_name or DEFAULT_SIGNATURE,
            examples_from_input(req.input),
        )
    elif kind == "regress_log":
        req = record.regress_log.request
        dataplane.regress_on(
            servable,
            req.model_spec.signature_name or DEFAULT_SIGNATURE,
            examples_from_input(req.input),
        )
    elif kind == "multi_inference_log":
        req = record.multi_inference_log.request
        examples = examples_from_input(req.input)
        for task in req.tasks:
            sig = task.model_spec.signature_name or DEFAULT_SIGNATURE
            if task.method_name.endswith("classify"):
                dataplane.classify_on(servable, sig, examples)
            else:
                dataplane.regress_on(servable, sig, examples)
    else:
        raise ServingError.invalid_argument(f"Unsupported log_type for warmup: {kind}")
