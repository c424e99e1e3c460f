"""ServerCore with TF Serving's request protos: predict checks, dtypes, classify/regress (TF1 and
TF2 signatures), multi-inference, metadata, status, warmup and metric names."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

import tfsuite.protos  # noqa: F401

# isort: split
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    predict_pb2,
    regression_pb2,
)

from tfsuite.clients.codec import make_ndarray, make_tensor_proto
from tfsuite.server.core import ServerCore
from tfsuite.server.errors import MAX_ERROR_MESSAGE, ServingError
from tfsuite.server.metrics import (
    REQUEST_COUNT,
    REQUEST_EXAMPLE_COUNT_TOTAL,
    REQUEST_LATENCY,
    RUNTIME_LATENCY,
)
from tfsuite.server.options import ServerOptions
from tfsuite.serving_configs.model_config import (
    model_config_for,
    model_server_config,
    write_model_config,
)


@pytest.fixture(scope="module")
def core(
    tmp_path_factory: pytest.TempPathFactory,
    half_plus_two_base: Path,
    tf1_half_plus_two_base: Path,
    string_model_base: Path,
) -> Iterator[ServerCore]:
    """One core serving the TF2 (``hp``), TF1 (``tf1``) and string/half (``strings``) models."""
    config = model_server_config(
        [
            model_config_for("hp", half_plus_two_base, policy="latest"),
            model_config_for("tf1", tf1_half_plus_two_base, policy="latest"),
            model_config_for("strings", string_model_base, policy="latest"),
        ]
    )
    path = write_model_config(tmp_path_factory.mktemp("cfg") / "models.config", config)
    server = ServerCore(ServerOptions(model_config_file=str(path), file_system_poll_wait_seconds=0))
    server.start()
    yield server
    server.stop()


def _predict(
    core: ServerCore,
    name: str,
    inputs: dict[str, object],
    signature: str = "",
    output_filter: tuple[str, ...] = (),
    dtypes: dict[str, object] | None = None,
) -> predict_pb2.PredictResponse:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    for alias, value in inputs.items():
        request.inputs[alias].CopyFrom(make_tensor_proto(value, (dtypes or {}).get(alias)))
    request.output_filter.extend(output_filter)
    return core.predict(request)


def _error(call: Callable[[], object]) -> ServingError:
    with pytest.raises(ServingError) as err:
        call()
    return err.value


# -- predict ----------------------------------------------------------------------------------
def test_predict_half_plus_two_and_echo_model_spec(core: ServerCore) -> None:
    response = _predict(core, "hp", {"x": np.array([1.0, 2.0, 5.0], np.float32)})
    assert make_ndarray(response.outputs["y"]).tolist() == [2.5, 3.0, 4.5]
    assert response.model_spec.name == "hp"
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"


def test_predict_tf1_signature(core: ServerCore) -> None:
    response = _predict(core, "tf1", {"x": np.array([4.0], np.float32)}, signature="predict_raw")
    assert make_ndarray(response.outputs["y"]).tolist() == [4.0]


@pytest.mark.parametrize(
    ("inputs", "code", "message"),
    [
        (
            {"z": [1.0]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "input tensor alias not found in signature: z. Inputs expected to be in the set {x}.",
        ),
        (
            {},
            grpc.StatusCode.INVALID_ARGUMENT,
            (
                "input size does not match signature: 0!=1 len({}) != len({x}). Sent extra: {}. "
                "Missing but required: {x}."
            ),
        ),
        (
            {"x": [1.0], "z": [1.0]},
            grpc.StatusCode.INVALID_ARGUMENT,
            (
                "input size does not match signature: 2!=1 len({x,z}) != len({x}). Sent extra: {z}. "
                "Missing but required: {}."
            ),
        ),
        (
            {"x": [b"one"]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "Expects arg[0] to be float but string is provided",
        ),
        (
            {"x": np.array([1, 2], np.int32)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "Expects arg[0] to be float but int32 is provided",
        ),
    ],
)
def test_predict_input_errors(core: ServerCore, inputs: dict, code, message: str) -> None:
    dtypes = {
        k: np.float32
        for k, v in inputs.items()
        if isinstance(v, list) and v and isinstance(v[0], float)
    }
    err = _error(lambda: _predict(core, "hp", inputs, dtypes=dtypes))
    assert (err.code, err.message) == (code, message)


def test_predict_does_not_check_shapes_against_the_signature(core: ServerCore) -> None:
    # TF Serving feeds the tensors to the Session: x is [?] in the SignatureDef, but an
    # elementwise graph answers a [2,2] x, as TF Serving answers it.
    response = _predict(core, "hp", {"x": np.ones((2, 2), np.float32)})
    np.testing.assert_allclose(make_ndarray(response.outputs["y"]), np.full((2, 2), 2.5))
    response = _predict(core, "tf1", {"x": np.float32(2.0)})  # a scalar, into [?]
    assert make_ndarray(response.outputs["y"]).tolist() == 3.0


def test_predict_shape_errors_come_from_the_runtime(core: ServerCore) -> None:
    # "rows" sums over axis 1: a rank-1 input fails in the op, with the runtime's message.
    err = _error(lambda: _predict(core, "strings", {"seq": np.ones(3, np.int32)}, "rows"))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "signature" not in err.message
    assert "Invalid reduction dimension" in err.message and "\n" not in err.message


def test_signature_not_found(core: ServerCore) -> None:
    err = _error(lambda: _predict(core, "hp", {"x": [1.0]}, signature="nope"))
    assert (err.code, err.message) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        'Serving signature key "nope" not found.',
    )


def test_output_filter(core: ServerCore) -> None:
    response = _predict(core, "strings", {"text": [b"ab"]}, output_filter=("upper",))
    assert list(response.outputs) == ["upper"]
    err = _error(lambda: _predict(core, "strings", {"text": [b"ab"]}, output_filter=("nope",)))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.message == (
        "output tensor alias not found in signature: nope "
        "Outputs expected to be in the set {length,upper}."
    )


def test_string_half_and_int_dtypes(core: ServerCore) -> None:
    out = _predict(core, "strings", {"text": [b"abc", "d\u00e9".encode()]}).outputs
    assert make_ndarray(out["length"]).tolist() == [3, 3]
    assert make_ndarray(out["upper"]).tolist() == [b"ABC", "D\u00e9".encode()]
    half = _predict(core, "strings", {"h": np.array([1.5, -2], np.float16)}, signature="half")
    doubled = make_ndarray(half.outputs["doubled"])
    assert doubled.dtype == np.float16 and doubled.tolist() == [3.0, -4.0]
    seq = np.array([[1, 2], [3, 4]], np.int32)
    rows = _predict(core, "strings", {"seq": seq}, signature="rows")
    assert make_ndarray(rows.outputs["total"]).tolist() == [3, 7]


def test_typed_val_encoding_is_accepted(core: ServerCore) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "hp"
    tensor = request.inputs["x"]
    tensor.dtype = 1  # DT_FLOAT
    tensor.tensor_shape.dim.add().size = 2
    tensor.float_val.extend([2.0, 4.0])
    assert make_ndarray(core.predict(request).outputs["y"]).tolist() == [3.0, 4.0]


# -- classify / regress / multi-inference -----------------------------------------------------
@pytest.mark.parametrize("model", ["tf1", "hp"])
def test_classify_and_regress(
    core: ServerCore, model: str, float_examples: Callable[..., list[Any]]
) -> None:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "classify_x_to_y"
    request.input.example_list.examples.extend(float_examples(1.0, 4.0))
    response = core.classify(request)
    assert [[c.score for c in r.classes] for r in response.result.classifications] == [[2.5], [4.0]]
    assert response.model_spec.version.value == 1

    reg = regression_pb2.RegressionRequest()
    reg.model_spec.name = model
    reg.model_spec.signature_name = "regress_x_to_y"
    reg.input.example_list.examples.extend(float_examples(2.0))
    assert [r.value for r in core.regress(reg).result.regressions] == [3.0]


def test_classify_with_classes_and_context(
    core: ServerCore, float_examples: Callable[..., list[Any]]
) -> None:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "tf1"
    request.model_spec.signature_name = "classify_x_to_classes"
    ctx = request.input.example_list_with_context
    ctx.context.features.feature["x"].float_list.value.append(8.0)  # used when x is absent
    ctx.examples.add()  # takes x from the context
    ctx.examples.extend(float_examples(2.0))
    result = core.classify(request).result
    assert [[(c.label, c.score) for c in r.classes] for r in result.classifications] == [
        [("half_plus_two", 6.0)],
        [("half_plus_two", 3.0)],
    ]


def _classify_request(
    model: str, signature: str, examples: list[Any]
) -> classification_pb2.ClassificationRequest:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    request.input.example_list.examples.extend(examples)
    return request


def test_classify_errors(core: ServerCore, float_examples: Callable[..., list[Any]]) -> None:
    # With the method-name check off (TF Serving's default) the structure decides.
    err = _error(
        lambda: core.classify(_classify_request("tf1", "regress_x_to_y", float_examples(1.0)))
    )
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.message.startswith(
        'Expected classification signature outputs to contain at least one of "classes" or '
        '"scores". Signature was: '
    )
    err = _error(
        lambda: core.classify(_classify_request("hp", "serving_default", float_examples(1.0)))
    )
    assert err.message.startswith("No classification inputs found in SignatureDef: ")
    err = _error(lambda: core.classify(_classify_request("hp", "nope", float_examples(1.0))))
    assert (err.code, err.message) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "No signature was found with the name: nope",
    )
    err = _error(lambda: core.classify(_classify_request("tf1", "classify_x_to_y", [])))
    assert (err.code, err.message) == (grpc.StatusCode.INVALID_ARGUMENT, "Input is empty.")


def test_method_name_check_flag(
    tf1_half_plus_two_base: Path, half_plus_two_base: Path, float_examples: Callable[..., list[Any]]
) -> None:
    from tfsuite.server.dataplane import DataPlane, RequestSpec

    options = ServerOptions(
        model_name="hp",
        model_base_path=str(half_plus_two_base),
        file_system_poll_wait_seconds=0,
        enable_signature_method_name_check=True,
    )
    dp = DataPlane(options)
    dp.start()
    try:
        example = float_examples(1.0)[0].SerializeToString()
        err = _error(
            lambda: dp.classify(RequestSpec("hp", signature_name="classify_x_to_y"), [example])
        )
        assert err.message == (
            "Expected classification signature method_name to be tensorflow/serving/classify. "
            "Was: tensorflow/serving/predict"
        )
    finally:
        dp.stop()


def test_duplicate_output_filter(core: ServerCore) -> None:
    twice = ("upper", "upper")
    err = _error(lambda: _predict(core, "strings", {"text": [b"a"]}, output_filter=twice))
    assert err.message == "duplicate output tensor alias: upper"


def test_multi_inference(core: ServerCore, float_examples: Callable[..., list[Any]]) -> None:
    request = inference_pb2.MultiInferenceRequest()
    for sig, method in [
        ("classify_x_to_y", "tensorflow/serving/classify"),
        ("regress_x_to_y", "tensorflow/serving/regress"),
    ]:
        task = request.tasks.add()
        task.model_spec.name = "tf1"
        task.model_spec.signature_name = sig
        task.method_name = method
    request.input.example_list.examples.extend(float_examples(2.0))
    results = core.multi_inference(request).results
    assert results[0].classification_result.classifications[0].classes[0].score == 3.0
    assert results[1].regression_result.regressions[0].value == 3.0
    assert {r.model_spec.version.value for r in results} == {1}

    request.tasks[1].method_name = "tensorflow/serving/predict"
    err = _error(lambda: core.multi_inference(request))
    assert (err.code, err.message) == (
        grpc.StatusCode.UNIMPLEMENTED,
        "Unsupported signature method_name: tensorflow/serving/predict",
    )
    request.tasks[1].model_spec.signature_name = "nope"
    err = _error(lambda: core.multi_inference(request))
    assert err.message == "Requested signature not found in model graph: nope"
    request.tasks[1].model_spec.signature_name = "classify_x_to_y"
    err = _error(lambda: core.multi_inference(request))
    assert err.message == "Duplicate evaluation of signature: classify_x_to_y"
    request.tasks[1].model_spec.name = "hp"
    err = _error(lambda: core.multi_inference(request))
    assert err.message == (
        "All ModelSpecs in a MultiInferenceRequest must access the same model name."
    )


# -- metadata and status ----------------------------------------------------------------------
def test_metadata(core: ServerCore) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "tf1"
    request.metadata_field.append("signature_def")
    response = core.get_model_metadata(request)
    sigmap = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(sigmap)
    assert response.model_spec.version.value == 1
    classify = sigmap.signature_def["classify_x_to_y"]
    assert classify.method_name == "tensorflow/serving/classify"
    assert list(classify.inputs) == ["inputs"]
    assert sigmap.signature_def["serving_default"].inputs["x"].dtype == 1  # DT_FLOAT
    request.metadata_field[0] = "other"
    assert _error(lambda: core.get_model_metadata(request)).message == (
        "Metadata field other is not supported"
    )


def test_model_status_proto(core: ServerCore) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "hp"
    (row,) = core.get_model_status(request).model_version_status
    assert row.version == 1
    assert row.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert row.status.error_code == 0


def test_metric_names_and_labels(
    core: ServerCore, float_examples: Callable[..., list[Any]]
) -> None:
    _predict(core, "hp", {"x": np.array([1.0], np.float32)})
    _error(lambda: _predict(core, "hp", {"z": np.array([1.0], np.float32)}))
    reg = regression_pb2.RegressionRequest()
    reg.model_spec.name = "tf1"
    reg.model_spec.signature_name = "regress_x_to_y"
    reg.input.example_list.examples.extend(float_examples(1.0, 2.0))
    core.regress(reg)
    text = core.metrics.render().decode()
    assert f"# TYPE {REQUEST_COUNT} counter" in text
    assert f'{REQUEST_COUNT}{{model_name="hp",model_version="1",status="OK"}}' in text
    assert f'{REQUEST_COUNT}{{model_name="hp",model_version="1",status="INVALID_ARGUMENT"}}' in text
    assert f"# TYPE {REQUEST_LATENCY} histogram" in text
    assert (
        f'{REQUEST_LATENCY}_count{{model_name="hp",model_version="1",API="Predict",'
        'entrypoint="GRPC"}'
    ) in text
    assert f'{RUNTIME_LATENCY}_bucket{{model_name="hp",model_version="1",API="Predict",' in text
    assert f'{REQUEST_EXAMPLE_COUNT_TOTAL}{{model="tf1",model_version="1"}}' in text
    # The same numbers through prometheus_client's registry API.
    value = core.metrics.registry.get_sample_value(
        REQUEST_COUNT, {"model_name": "hp", "model_version": "1", "status": "OK"}
    )
    assert value is not None and value >= 1


# -- warmup -----------------------------------------------------------------------------------
def _warmup_request(alias: str) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "w"
    request.inputs[alias].CopyFrom(make_tensor_proto(np.array([1.0], np.float32)))
    return request


def test_warmup_replayed_before_available(make_model_base) -> None:
    from tfsuite.serving_configs.warmup import write_warmup_requests

    base = make_model_base({1: "half_plus_two"}, name="w")
    write_warmup_requests(base / "1", [_warmup_request("x")] * 2)
    options = ServerOptions(
        model_name="w",
        model_base_path=str(base),
        file_system_poll_wait_seconds=0,
        num_request_iterations_for_warmup=3,
    )
    with ServerCore(options) as server:
        labels = ("w", "1", "Predict", "TF2")
        assert server.metrics.runtime_latency.count(labels) == 6  # 2 records x 3 iterations
        assert server.metrics.request_count.value(("w", "1", "OK")) == 0  # not counted as requests


def test_failing_warmup_fails_the_load(make_model_base) -> None:
    from tfsuite.serving_configs.warmup import write_warmup_requests

    base = make_model_base({1: "half_plus_two"}, name="w")
    write_warmup_requests(base / "1", [_warmup_request("wrong_alias")])
    options = ServerOptions(
        model_name="w",
        model_base_path=str(base),
        file_system_poll_wait_seconds=0,
        max_num_load_retries=0,
    )
    with ServerCore(options) as server:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "w"
        (row,) = server.get_model_status(request).model_version_status
        assert row.state == get_model_status_pb2.ModelVersionStatus.END
        assert "input tensor alias not found in signature: wrong_alias" in row.status.error_message


def test_runtime_error_keeps_tensorflow_code_and_message(core: ServerCore) -> None:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "tf1"
    request.model_spec.signature_name = "classify_x_to_y"
    request.input.example_list.examples.add()  # no feature "x": parse_example fails in TF
    err = _error(lambda: core.classify(request))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "Feature: x (data type: float) is required but could not be found" in err.message
    assert "\n" not in err.message


def test_dataplane_numpy_api(core: ServerCore) -> None:
    from tfsuite.server.dataplane import RequestSpec

    dp = core.dataplane
    version, out = dp.predict(RequestSpec("strings"), {"text": np.array(["ab", "xyz"])})  # str ok
    assert version == 1 and out["upper"].tolist() == [b"AB", b"XYZ"]
    version, specs = dp.input_specs(RequestSpec("strings", signature_name="half"))
    assert version == 1 and list(specs) == ["h"]
    assert specs["h"].np_dtype == np.float16 and specs["h"].dims == (None,)
    version, sigmap = dp.get_model_metadata(RequestSpec("hp"))
    assert sigmap.signature_def["regress_x_to_y"].outputs["outputs"].dtype == 1


def test_long_error_messages_are_truncated_to_the_limit(core: ServerCore) -> None:
    alias = "a" * (2 * MAX_ERROR_MESSAGE)
    err = _error(lambda: _predict(core, "hp", {alias: np.array([1.0], np.float32)}))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert len(err.message) == MAX_ERROR_MESSAGE
    assert err.message.startswith("input tensor alias not found in signature: aaa")
    assert err.message.endswith(" ... [truncated]")
    short = ServingError.invalid_argument("x" * MAX_ERROR_MESSAGE)
    assert short.message == "x" * MAX_ERROR_MESSAGE  # at the limit: kept whole
