"""Protocol-independent request building and response parsing for TF Serving's gRPC API.

Every public call of the gRPC clients is described here once as an :class:`RPC`: which
method, the (already serialized, where it pays) request, and how to turn the response into
Python values. :mod:`tfsuite.clients.grpc_client` only moves RPCs over a sync or an asyncio
channel, so the two clients share everything but the transport call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc
import numpy as np

import tfsuite.protos  # noqa: F401

# isort: split
from google.protobuf import text_format
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

from tfsuite.clients.codec import decode_outputs, predict_request_wire
from tfsuite.clients.errors import ServingClientError
from tfsuite.clients.specs import ModelMetadata, VersionStatus, metadata_from_response, parse_status
from tfsuite.errors import UsageError

__all__ = [
    "METHODS",
    "RPC",
    "check_model_ref",
    "examples_rpc",
    "make_example",
    "metadata_rpc",
    "model_spec",
    "predict_rpc",
    "predict_rpc_encoded",
    "raw_reply",
    "reload_config_rpc",
    "status_rpc",
]

T = TypeVar("T")

#: method -> (full gRPC path, response class)
METHODS: dict[str, tuple[str, Any]] = {
    "Predict": ("/tensorflow.serving.PredictionService/Predict", predict_pb2.PredictResponse),
    "Classify": (
        "/tensorflow.serving.PredictionService/Classify",
        classification_pb2.ClassificationResponse,
    ),
    "Regress": ("/tensorflow.serving.PredictionService/Regress", regression_pb2.RegressionResponse),
    "GetModelMetadata": (
        "/tensorflow.serving.PredictionService/GetModelMetadata",
        get_model_metadata_pb2.GetModelMetadataResponse,
    ),
    "GetModelStatus": (
        "/tensorflow.serving.ModelService/GetModelStatus",
        get_model_status_pb2.GetModelStatusResponse,
    ),
    "HandleReloadConfigRequest": (
        "/tensorflow.serving.ModelService/HandleReloadConfigRequest",
        model_management_pb2.ReloadConfigResponse,
    ),
}

_CODE_BY_NUMBER: dict[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}


@dataclass(frozen=True)
class RPC(Generic[T]):
    """One call: the method name (a key of :data:`METHODS`), its request, its parser, and the
    model reference it asks for (reported to the clients' call hook)."""

    method: str
    request: bytes | Any
    """Serialized bytes or a message (the channel serializer accepts both)."""
    parse: Callable[[Any], T]
    model: str = ""
    version: int | None = None
    label: str | None = None

    @property
    def request_bytes(self) -> int:
        return len(self.request) if isinstance(self.request, bytes) else self.request.ByteSize()


def raw_reply(response: T) -> T:
    """A parser that keeps the answer message as it is (no tensor decoding): for load
    generators, which only need the reply's ``model_spec`` and size."""
    return response


def predict_rpc_encoded(
    request: bytes,
    model: str,
    version: int | None = None,
    label: str | None = None,
    parse: Callable[[Any], Any] = raw_reply,
) -> RPC[Any]:
    """A Predict call with an already serialized request (a request pool's entry)."""
    return RPC("Predict", request, parse, model, version, label)


def serialize(request: bytes | Any) -> bytes:
    """The request serializer of every method: pre-serialized bytes pass through untouched."""
    return request if isinstance(request, bytes) else request.SerializeToString()


def check_model_ref(model: str, version: int | None, label: str | None) -> None:
    """The user-side checks of a model reference, shared by the gRPC and REST clients."""
    if not model:
        raise UsageError("no model name given; pass model=... (CLI: --model NAME)")
    if version is not None and label:
        raise UsageError("give a version or a label, not both")


def model_spec(
    spec: model_pb2.ModelSpec,
    model: str,
    version: int | None = None,
    label: str | None = None,
    signature: str | None = None,
) -> model_pb2.ModelSpec:
    """Fill ``spec`` (version and label are exclusive, as in TF Serving's ``oneof``)."""
    check_model_ref(model, version, label)
    spec.name = model
    if version is not None:
        spec.version.value = int(version)
    elif label:
        spec.version_label = label
    if signature:
        spec.signature_name = signature
    return spec


def predict_rpc(
    inputs: Mapping[str, Any],
    model: str,
    version: int | None = None,
    label: str | None = None,
    signature: str | None = None,
    output_filter: Iterable[str] | None = None,
) -> RPC[dict[str, np.ndarray]]:
    if not inputs:
        raise UsageError("predict needs at least one input tensor ({alias: array})")
    head = _predict_head(model, version, label, signature, tuple(output_filter or ()))
    # Only the small head goes through the generated class (once per model spec); the
    # tensors are written straight to the wire (one copy of the pixels instead of three).
    wire = predict_request_wire(head, inputs)
    return RPC("Predict", wire, _parse_predict, model, version, label)


@functools.lru_cache(maxsize=256)
def _predict_head(
    model: str,
    version: int | None,
    label: str | None,
    signature: str | None,
    output_filter: tuple[str, ...],
) -> bytes:
    """Serialized PredictRequest without inputs (model_spec, output_filter)."""
    head = predict_pb2.PredictRequest()
    model_spec(head.model_spec, model, version, label, signature)
    head.output_filter.extend(output_filter)
    return head.SerializeToString()


def _parse_predict(resp: predict_pb2.PredictResponse) -> dict[str, np.ndarray]:
    return decode_outputs(resp.outputs)


def metadata_rpc(
    model: str, version: int | None = None, label: str | None = None
) -> RPC[ModelMetadata]:
    req = get_model_metadata_pb2.GetModelMetadataRequest()
    model_spec(req.model_spec, model, version, label)
    req.metadata_field.append("signature_def")
    return RPC("GetModelMetadata", req, metadata_from_response, model, version, label)


def status_rpc(
    model: str, version: int | None = None, label: str | None = None
) -> RPC[list[VersionStatus]]:
    req = get_model_status_pb2.GetModelStatusRequest()
    model_spec(req.model_spec, model, version, label)
    return RPC("GetModelStatus", req, parse_status, model, version, label)


def _feature(value: Any) -> feature_pb2.Feature:
    feature = feature_pb2.Feature()
    values = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
    arr = np.asarray(values)
    if arr.dtype.kind in "SUO":
        feature.bytes_list.value.extend(
            v if isinstance(v, bytes) else str(v).encode() for v in values
        )
    elif arr.dtype.kind == "f":
        feature.float_list.value.extend(arr.astype(np.float32).reshape(-1).tolist())
    elif arr.dtype.kind in "iub":
        feature.int64_list.value.extend(arr.astype(np.int64).reshape(-1).tolist())
    else:
        raise UsageError(f"cannot put {arr.dtype} values into a tf.train.Example feature")
    return feature


def make_example(features: Mapping[str, Any] | example_pb2.Example) -> example_pb2.Example:
    """``{name: value(s)}`` -> ``tf.train.Example`` (bytes/str, float, int features)."""
    if isinstance(features, example_pb2.Example):
        return features
    example = example_pb2.Example()
    for name, value in features.items():
        example.features.feature[name].CopyFrom(_feature(value))
    return example


def _parse_classify(
    resp: classification_pb2.ClassificationResponse,
) -> list[list[tuple[str, float]]]:
    return [[(c.label, c.score) for c in result.classes] for result in resp.result.classifications]


def _parse_regress(resp: regression_pb2.RegressionResponse) -> np.ndarray:
    return np.asarray([r.value for r in resp.result.regressions], dtype=np.float32)


#: The two tf.train.Example APIs differ only in request class and answer: method -> both.
_EXAMPLE_METHODS: dict[str, tuple[Callable[[], Any], Callable[[Any], Any]]] = {
    "Classify": (classification_pb2.ClassificationRequest, _parse_classify),
    "Regress": (regression_pb2.RegressionRequest, _parse_regress),
}


def examples_rpc(
    method: str,
    examples: Sequence[Mapping[str, Any] | example_pb2.Example],
    model: str,
    version: int | None = None,
    label: str | None = None,
    signature: str | None = None,
) -> RPC[Any]:
    """``Classify`` or ``Regress`` over ``examples`` (Examples or ``{feature: value}`` dicts)."""
    request_class, parse = _EXAMPLE_METHODS[method]
    req = request_class()
    model_spec(req.model_spec, model, version, label, signature)
    req.input.example_list.examples.extend(make_example(e) for e in examples)
    return RPC(method, req, parse, model, version, label)


def reload_config_rpc(
    config: model_server_config_pb2.ModelServerConfig | str,
) -> RPC[None]:
    """``config``: a ``ModelServerConfig`` or its text form (the models.config file's text)."""
    if isinstance(config, str):
        msg = model_server_config_pb2.ModelServerConfig()
        try:
            text_format.Parse(config, msg)
        except text_format.ParseError as exc:
            raise UsageError(f"model server config does not parse: {exc}") from None
        config = msg
    req = model_management_pb2.ReloadConfigRequest()
    req.config.CopyFrom(config)
    return RPC("HandleReloadConfigRequest", req, _parse_reload)


def _parse_reload(resp: model_management_pb2.ReloadConfigResponse) -> None:
    status = resp.status
    if status.error_code != 0:
        code = _CODE_BY_NUMBER.get(status.error_code, grpc.StatusCode.UNKNOWN)
        raise ServingClientError(status.error_message, code=code)
