"""REST API of the embedded server: a real uvicorn server on an ephemeral port, plain httpx."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tfsuite.server.app import ModelServer
from tfsuite.server.options import ServerOptions

MAX_REQUEST_BYTES = 64 * 1024
METRICS_PATH = "/monitoring/prometheus/metrics"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, api_models_config: Path
) -> Iterator[ModelServer]:
    root = tmp_path_factory.mktemp("api_rest")
    monitoring = root / "monitoring.config"
    monitoring.write_text(f'prometheus_config {{ enable: true path: "{METRICS_PATH}" }}')
    options = ServerOptions(
        port=-1,
        rest_api_port=-1,
        model_config_file=str(api_models_config),
        monitoring_config_file=str(monitoring),
        file_system_poll_wait_seconds=0,
        max_request_bytes=MAX_REQUEST_BYTES,
        rest_api_num_threads=4,
    )
    with ModelServer(options) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: ModelServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{server.rest_port}", timeout=30) as client:
        yield client


# -- predict formats ----------------------------------------------------------------------------


def test_row_predict_half_plus_two(http: httpx.Client) -> None:
    r = http.post("/v1/models/hp2/versions/1:predict", json={"instances": [1.0, 2.0, 5.0]})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"predictions": [2.5, 3.0, 4.5]}


def test_columnar_predict_and_latest_version(http: httpx.Client) -> None:
    r = http.post("/v1/models/hp2:predict", json={"inputs": {"x": [1.0, 2.0]}})
    assert r.status_code == 200, r.text
    assert r.json() == {"outputs": [3.5, 4.0]}  # latest = version 2 = 0.5x + 3
    r = http.post("/v1/models/hp2:predict", json={"inputs": [1.0]})
    assert r.json() == {"outputs": [3.5]}


@pytest.mark.parametrize(
    ("path", "expected"), [("labels/stable", 2.5), ("labels/canary", 3.5), ("versions/2", 3.5)]
)
def test_predict_by_label_and_version(http: httpx.Client, path: str, expected: float) -> None:
    r = http.post(f"/v1/models/hp2/{path}:predict", json={"instances": [1.0]})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [expected]}


def test_integers_are_accepted_for_float_inputs(http: httpx.Client) -> None:
    r = http.post("/v1/models/hp2/versions/1:predict", json={"instances": [1, 2]})
    assert r.json() == {"predictions": [2.5, 3.0]}


def test_strings_multiple_outputs_row_and_columnar(http: httpx.Client) -> None:
    r = http.post("/v1/models/strings:predict", json={"instances": ["ab", "xyz"]})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "predictions": [{"length": 2, "upper": "AB"}, {"length": 3, "upper": "XYZ"}]
    }
    r = http.post("/v1/models/strings:predict", json={"inputs": {"text": ["ab"]}})
    assert r.json() == {"outputs": {"length": [2], "upper": ["AB"]}}


def test_b64_binary_input(http: httpx.Client) -> None:
    payload = {"instances": [{"b64": base64.b64encode(b"hello").decode()}]}
    r = http.post("/v1/models/strings:predict", json=payload)
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [{"length": 5, "upper": "HELLO"}]}


def test_named_instances_and_other_signature(http: httpx.Client) -> None:
    r = http.post(
        "/v1/models/strings:predict",
        json={"signature_name": "rows", "instances": [{"seq": [1, 2, 3]}, {"seq": [4, 5, 6]}]},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [6, 15]}
    r = http.post("/v1/models/strings:predict", json={"signature_name": "half", "instances": [1.5]})
    assert r.json() == {"predictions": [3.0]}


def test_classify_and_regress(http: httpx.Client) -> None:
    r = http.post(
        "/v1/models/tf1:classify",
        json={"signature_name": "classify_x_to_y", "examples": [{"x": 1.0}, {"x": 4.0}]},
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [row[0][1] for row in results] == pytest.approx([2.5, 4.0])
    r = http.post(
        "/v1/models/tf1:regress",
        json={"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["results"] == pytest.approx([3.0])


def test_classify_with_class_labels_and_context(http: httpx.Client) -> None:
    r = http.post(
        "/v1/models/tf1:classify",
        json={
            "signature_name": "classify_x_to_classes",
            "context": {"x": 9.0},
            "examples": [{"x": 2.0}, {}],
        },
    )
    assert r.status_code == 200, r.text
    # [[label, score]] per example; the second example takes x from the context.
    assert r.json() == {"results": [[["half_plus_two", 3.0]], [["half_plus_two", 6.5]]]}


# -- status and metadata ------------------------------------------------------------------------


def test_status(http: httpx.Client) -> None:
    r = http.get("/v1/models/hp2/versions/1")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    r = http.get("/v1/models/hp2")
    assert sorted(s["version"] for s in r.json()["model_version_status"]) == ["1", "2"]


def test_metadata(http: httpx.Client) -> None:
    r = http.get("/v1/models/hp2/labels/stable/metadata")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_spec"]["name"] == "hp2" and body["model_spec"]["version"] == "1"
    sigs = body["metadata"]["signature_def"]["signature_def"]
    assert sigs["serving_default"]["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert sigs["serving_default"]["method_name"] == "tensorflow/serving/predict"


# -- errors: TF Serving's status + {"error": ...}, server keeps serving --------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "fragment"),
    [
        ("POST", "/v1/models/hp2:predict", b"{not json", 400, "JSON Parse error"),
        (
            "POST",
            "/v1/models/hp2:predict",
            b'{"instances": [1], "inputs": [1]}',
            400,
            "only one of",
        ),
        (
            "POST",
            "/v1/models/hp2:predict",
            b'{"signature_name": "serving_default"}',
            400,
            "Missing 'inputs' or 'instances' key",
        ),
        (
            "POST",
            "/v1/models/strings:predict",
            b'{"instances": [{"b64": "%%%"}]}',
            400,
            "Unable to base64 decode",
        ),
        (
            "POST",
            "/v1/models/hp2:predict",
            b'{"instances": ["a"]}',
            400,
            "is not of expected type: float",
        ),
        ("POST", "/v1/models/hp2:predict", b'{"instances": [[1.0], [1.0, 2.0]]}', 400, "ragged"),
        (
            "POST",
            "/v1/models/hp2:predict",
            b'{"inputs": {"z": [1.0]}}',
            400,
            "does not have named input: z",
        ),
        (
            "POST",
            "/v1/models/hp2:predict",
            b'{"signature_name": "nosig", "instances": [1.0]}',
            400,
            'Serving signature key "nosig" not found.',
        ),
        (
            "POST",
            "/v1/models/nope:predict",
            b'{"instances": [1.0]}',
            404,
            "Servable not found for request: Latest(nope)",
        ),
        (
            "POST",
            "/v1/models/hp2/versions/9:predict",
            b'{"instances": [1.0]}',
            404,
            "Servable not found for request: Specific(hp2, 9)",
        ),
        (
            "POST",
            "/v1/models/hp2/labels/beta:predict",
            b'{"instances": [1.0]}',
            400,
            "Unrecognized servable version label: beta",
        ),
        (
            "GET",
            "/v1/models/hp2:predict",
            None,
            400,
            "Malformed request: GET /v1/models/hp2:predict",
        ),
        ("POST", "/v1/models/hp2:explode", b"{}", 400, "Malformed request"),
        ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
        ("GET", "/v2/elsewhere", None, 404, "Not found"),
        (
            "POST",
            "/v1/models/hp2:predict",
            b'{"instances": [' + b"1.0," * 20000 + b"1.0]}",
            413,
            "exceeds the limit",
        ),
    ],
)
def test_errors(
    http: httpx.Client, method: str, path: str, body: bytes | None, status: int, fragment: str
) -> None:
    r = http.request(method, path, content=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert fragment in r.json()["error"]
    ok = http.post("/v1/models/hp2/versions/1:predict", json={"instances": [1.0]})
    assert ok.json() == {"predictions": [2.5]}


def test_prometheus_endpoint_has_tf_serving_names(http: httpx.Client) -> None:
    http.post("/v1/models/hp2/versions/1:predict", json={"instances": [1.0]})
    r = http.get(METRICS_PATH)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert ":tensorflow:serving:request_count{" in text
    assert 'model_name="hp2"' in text
    assert ":tensorflow:serving:request_latency_bucket{" in text
    assert 'entrypoint="REST"' in text
