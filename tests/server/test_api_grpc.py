"""gRPC API of the embedded server: a real server on ephemeral ports, the official stubs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

import tfsuite.protos  # noqa: F401  (light TF proto import; must precede the pb2 imports)

# isort: split
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tfsuite.clients.codec import make_ndarray, make_tensor_proto
from tfsuite.server.app import ModelServer
from tfsuite.server.options import ServerOptions

OK = grpc.StatusCode.OK
MAX_REQUEST_BYTES = 256 * 1024


@pytest.fixture(scope="module")
def server(api_models_config: Path) -> Iterator[ModelServer]:
    config = api_models_config
    options = ServerOptions(
        port=-1,
        rest_api_port=0,
        model_config_file=str(config),
        file_system_poll_wait_seconds=0,
        enable_grpc_healthcheck_service=True,
        max_request_bytes=MAX_REQUEST_BYTES,
        grpc_max_threads=8,
    )
    with ModelServer(options) as srv:
        yield srv


@pytest.fixture(scope="module")
def channel(server: ModelServer) -> Iterator[grpc.Channel]:
    ch = grpc.insecure_channel(
        f"127.0.0.1:{server.grpc_port}",
        options=[("grpc.max_send_message_length", 64 * 1024 * 1024)],
    )
    yield ch
    ch.close()


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> prediction_service_pb2_grpc.PredictionServiceStub:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def model_stub(channel: grpc.Channel) -> model_service_pb2_grpc.ModelServiceStub:
    return model_service_pb2_grpc.ModelServiceStub(channel)


def _predict(
    name: str = "hp2", x: object = (1.0, 2.0, 5.0), **spec: object
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    for key, value in spec.items():
        if key == "version":
            request.model_spec.version.value = int(value)  # type: ignore[call-overload]
        else:
            setattr(request.model_spec, key, value)
    request.inputs["x"].CopyFrom(make_tensor_proto(np.asarray(x, dtype=np.float32)))
    return request


# -- happy paths ------------------------------------------------------------------------------


def test_predict_latest_echoes_model_spec(
    stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    # Specific policy {1, 2}: latest is version 2 (0.5x + 3).
    response = stub.Predict(_predict(), timeout=10)
    np.testing.assert_allclose(make_ndarray(response.outputs["y"]), [3.5, 4.0, 5.5])
    assert response.model_spec.name == "hp2"
    assert response.model_spec.version.value == 2
    assert response.model_spec.signature_name == "serving_default"


@pytest.mark.parametrize(
    ("spec", "version", "expected"),
    [
        ({"version": 1}, 1, [2.5, 3.0, 4.5]),
        ({"version_label": "stable"}, 1, [2.5, 3.0, 4.5]),
        ({"version_label": "canary"}, 2, [3.5, 4.0, 5.5]),
    ],
)
def test_predict_by_version_and_label(
    stub: prediction_service_pb2_grpc.PredictionServiceStub,
    spec: dict[str, object],
    version: int,
    expected: list[float],
) -> None:
    response = stub.Predict(_predict(**spec), timeout=10)
    np.testing.assert_allclose(make_ndarray(response.outputs["y"]), expected)
    assert response.model_spec.version.value == version


def test_predict_accepts_typed_val_fields(
    stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    request = _predict(version=1)
    tensor = request.inputs["x"]
    tensor.ClearField("tensor_content")
    tensor.float_val.extend([1.0, 2.0, 5.0])
    response = stub.Predict(request, timeout=10)
    np.testing.assert_allclose(make_ndarray(response.outputs["y"]), [2.5, 3.0, 4.5])


def test_predict_strings_and_output_filter(
    stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "strings"
    request.inputs["text"].CopyFrom(make_tensor_proto(np.array([b"ab", b"xyz"], dtype=object)))
    request.output_filter.append("upper")
    response = stub.Predict(request, timeout=10)
    assert list(response.outputs) == ["upper"]
    assert make_ndarray(response.outputs["upper"]).tolist() == [b"AB", b"XYZ"]


def test_predict_half_precision(stub: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "strings"
    request.model_spec.signature_name = "half"
    request.inputs["h"].CopyFrom(make_tensor_proto(np.array([1.5, -2.0], dtype=np.float16)))
    out = make_ndarray(stub.Predict(request, timeout=10).outputs["doubled"])
    assert out.dtype == np.float16 and out.tolist() == [3.0, -4.0]


@pytest.mark.parametrize("model", ["tf1", "hp2"])
def test_classify_and_regress(
    stub: prediction_service_pb2_grpc.PredictionServiceStub,
    model: str,
    float_examples: Callable[..., list[Any]],
) -> None:
    offset = 2.0 if model == "tf1" else 3.0  # hp2 latest is half_plus_three
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "classify_x_to_y"
    request.input.example_list.examples.extend(float_examples(1.0, 4.0))
    response = stub.Classify(request, timeout=10)
    scores = [c.classes[0].score for c in response.result.classifications]
    np.testing.assert_allclose(scores, [0.5 + offset, 2.0 + offset])
    assert response.model_spec.name == model and response.model_spec.version.value >= 1

    rrequest = regression_pb2.RegressionRequest()
    rrequest.model_spec.name = model
    rrequest.model_spec.signature_name = "regress_x_to_y"
    rrequest.input.example_list.examples.extend(float_examples(2.0))
    rresponse = stub.Regress(rrequest, timeout=10)
    np.testing.assert_allclose([r.value for r in rresponse.result.regressions], [1.0 + offset])


def test_multi_inference(
    stub: prediction_service_pb2_grpc.PredictionServiceStub,
    float_examples: Callable[..., list[Any]],
) -> None:
    request = inference_pb2.MultiInferenceRequest()
    for sig, method in (
        ("classify_x_to_y", "tensorflow/serving/classify"),
        ("regress_x_to_y", "tensorflow/serving/regress"),
    ):
        task = request.tasks.add()
        task.model_spec.name = "tf1"
        task.model_spec.signature_name = sig
        task.method_name = method
    request.input.example_list.examples.extend(float_examples(2.0))
    response = stub.MultiInference(request, timeout=10)
    assert len(response.results) == 2
    assert response.results[0].classification_result.classifications[0].classes[
        0
    ].score == pytest.approx(3.0)
    assert response.results[1].regression_result.regressions[0].value == pytest.approx(3.0)


def test_get_model_metadata(stub: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "hp2"
    request.model_spec.version.value = 1
    request.metadata_field.append("signature_def")
    response = stub.GetModelMetadata(request, timeout=10)
    assert response.model_spec.version.value == 1
    sigmap = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(sigmap)
    assert {"serving_default", "classify_x_to_y", "regress_x_to_y"} <= set(sigmap.signature_def)
    assert set(sigmap.signature_def["serving_default"].inputs) == {"x"}


def test_get_model_status(model_stub: model_service_pb2_grpc.ModelServiceStub) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "hp2"
    response = model_stub.GetModelStatus(request, timeout=10)
    rows = {s.version: s for s in response.model_version_status}
    assert set(rows) == {1, 2}
    for row in rows.values():
        assert get_model_status_pb2.ModelVersionStatus.State.Name(row.state) == "AVAILABLE"
        assert row.status.error_code == 0


def test_health_service_reports_serving(channel: grpc.Channel) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "tensorflow.serving.PredictionService", "tensorflow.serving.ModelService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


# -- bad input: TF Serving's code and message, and the server keeps serving ------------------


def _bad_predicts() -> list[tuple[str, predict_pb2.PredictRequest, grpc.StatusCode, str]]:
    cases = []
    cases.append(
        (
            "unknown model",
            _predict("nope"),
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Latest(nope)",
        )
    )
    cases.append(
        (
            "unknown version",
            _predict(version=99),
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Specific(hp2, 99)",
        )
    )
    cases.append(
        (
            "unknown label",
            _predict(version_label="beta"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Unrecognized servable version label: beta",
        )
    )
    cases.append(
        (
            "empty name",
            _predict(""),
            grpc.StatusCode.INVALID_ARGUMENT,
            "ModelSpec has no name specified.",
        )
    )
    cases.append(
        (
            "unknown signature",
            _predict(signature_name="nosig"),
            grpc.StatusCode.FAILED_PRECONDITION,
            'Serving signature key "nosig" not found.',
        )
    )
    wrong_alias = _predict()
    wrong_alias.inputs["z"].CopyFrom(wrong_alias.inputs["x"])
    del wrong_alias.inputs["x"]
    cases.append(
        (
            "wrong alias",
            wrong_alias,
            grpc.StatusCode.INVALID_ARGUMENT,
            "input tensor alias not found in signature: z",
        )
    )
    missing = _predict()
    del missing.inputs["x"]
    cases.append(("missing input", missing, grpc.StatusCode.INVALID_ARGUMENT, "input"))
    wrong_dtype = _predict()
    wrong_dtype.inputs["x"].CopyFrom(make_tensor_proto(np.array([b"a"], dtype=object)))
    cases.append(("wrong dtype", wrong_dtype, grpc.StatusCode.INVALID_ARGUMENT, "string"))
    return cases


def _expect_error(call: Callable[[], object], code: grpc.StatusCode, message: str) -> None:
    """``call`` fails with ``code`` and a details string containing ``message``."""
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == code, err.value.details()
    assert message in err.value.details()


@pytest.mark.parametrize(
    ("what", "request_", "code", "message"),
    _bad_predicts(),
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_predict_requests(
    stub: prediction_service_pb2_grpc.PredictionServiceStub,
    what: str,
    request_: predict_pb2.PredictRequest,
    code: grpc.StatusCode,
    message: str,
) -> None:
    _expect_error(lambda: stub.Predict(request_, timeout=10), code, message)
    # ... and the server keeps serving.
    good = stub.Predict(_predict(version=1), timeout=10)
    np.testing.assert_allclose(make_ndarray(good.outputs["y"]), [2.5, 3.0, 4.5])


def test_metadata_without_signature_def_field(
    stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "hp2"
    _expect_error(
        lambda: stub.GetModelMetadata(request, timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
        "GetModelMetadataRequest must specify at least one metadata_field",
    )


def test_status_of_unknown_model_and_version(
    model_stub: model_service_pb2_grpc.ModelServiceStub,
) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "nope"
    _expect_error(
        lambda: model_stub.GetModelStatus(request, timeout=10),
        grpc.StatusCode.NOT_FOUND,
        "Could not find any versions of model nope",
    )
    request.model_spec.name = "hp2"
    request.model_spec.version.value = 7
    _expect_error(
        lambda: model_stub.GetModelStatus(request, timeout=10),
        grpc.StatusCode.NOT_FOUND,
        "Could not find version 7 of model hp2",
    )


def test_oversized_message_is_rejected(
    stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    big = np.zeros(MAX_REQUEST_BYTES // 4 + 1024, dtype=np.float32)
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(_predict(x=big), timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    good = stub.Predict(_predict(version=1), timeout=10)
    assert good.model_spec.version.value == 1


def test_malformed_protobuf_is_rejected(channel: grpc.Channel) -> None:
    raw = channel.unary_unary(
        "/tensorflow.serving.PredictionService/Predict",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    with pytest.raises(grpc.RpcError) as err:
        raw(b"\xff\xff\xff\xff not a protobuf", timeout=10)
    assert err.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)


# -- a second server: batching limits, reload over gRPC ----------------------------------------


@pytest.fixture
def batching_server(
    tmp_path: Path,
    api_model_bases: dict[str, Path],
    model_config_text: Callable[[dict[str, tuple[Path, str]]], str],
) -> Iterator[ModelServer]:
    params = tmp_path / "batching.txt"
    params.write_text(
        "max_batch_size { value: 4 } batch_timeout_micros { value: 1000 } num_batch_threads { value: 1 }"
    )
    config = tmp_path / "models.config"
    config.write_text(model_config_text({"tf1": (api_model_bases["tf1"], "")}))
    options = ServerOptions(
        port=-1,
        model_config_file=str(config),
        enable_batching=True,
        batching_parameters_file=str(params),
        file_system_poll_wait_seconds=0,
    )
    with ModelServer(options) as srv:
        yield srv


def test_batch_larger_than_max_and_reload_config(
    batching_server: ModelServer, api_model_bases: dict[str, Path]
) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{batching_server.grpc_port}") as ch:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
        request = _predict("tf1", x=np.arange(6, dtype=np.float32))
        _expect_error(
            lambda: stub.Predict(request, timeout=10),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Task size 6 is larger than maximum input batch size 4",
        )
        ok = stub.Predict(_predict("tf1", x=[1.0, 2.0]), timeout=10)
        np.testing.assert_allclose(make_ndarray(ok.outputs["y"]), [2.5, 3.0])

        # Replace the config: tf1 out, strings in.
        models = model_service_pb2_grpc.ModelServiceStub(ch)
        reload = model_management_pb2.ReloadConfigRequest()
        cfg = reload.config.model_config_list.config.add()
        cfg.name = "strings"
        cfg.base_path = str(api_model_bases["strings"])
        cfg.model_platform = "tensorflow"
        reply = models.HandleReloadConfigRequest(reload, timeout=60)
        assert reply.status.error_code == 0
        status = get_model_status_pb2.GetModelStatusRequest()
        status.model_spec.name = "strings"
        rows = models.GetModelStatus(status, timeout=10).model_version_status
        assert [get_model_status_pb2.ModelVersionStatus.State.Name(r.state) for r in rows] == [
            "AVAILABLE"
        ]
        with pytest.raises(grpc.RpcError) as err:
            stub.Predict(_predict("tf1"), timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
