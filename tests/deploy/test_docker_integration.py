"""``tfsuite up/status/down`` on a real Docker engine, serving with the suite image.

No registry is reachable here, so the image is built locally (``make image``'s code: a
debootstrap bookworm base + a wheelhouse built on the host, cached by content hash), then:
``tfsuite up --image <it> --replicas 2`` on an exported example base path; Predict through
both published ports by version and by label (gRPC and REST); ``detect`` sharded over both;
the bad inputs that need an engine; ``tfsuite down`` leaves no tfsuite container, network
or volume behind.

If no engine can be started, the test fails with the reason, unless TFSUITE_SKIP_DOCKER=1.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tfsuite.deploy.engine import LABEL

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MODEL = "ssd"
TFSUITE = [sys.executable, "-m", "tfsuite"]


@pytest.fixture(scope="module")
def engine() -> Any:
    if os.environ.get("TFSUITE_SKIP_DOCKER") == "1":
        pytest.skip("TFSUITE_SKIP_DOCKER=1: the Docker integration test was asked to skip")
    from tfsuite.deploy.engine import ensure_engine
    from tfsuite.deploy.errors import EngineUnavailable

    try:
        return ensure_engine()
    except EngineUnavailable as exc:
        pytest.fail(
            f"no Docker engine for the integration test: {exc} (TFSUITE_SKIP_DOCKER=1 skips)"
        )


@pytest.fixture(scope="module")
def suite_image(engine: Any) -> str:
    from tfsuite.deploy.image import build_suite_image

    build = build_suite_image(ROOT, "tfsuite:latest")
    print(f"suite image {build.tag}: {build.timings} cached={build.cached}")
    return build.tag


@pytest.fixture(scope="module")
def config_dir(detector_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Configs as for compose: the base path inside the dir, written as /models/ssd."""
    out = tmp_path_factory.mktemp("deploy") / "models"
    shutil.copytree(detector_base, out / MODEL)
    cli(
        [
            "configs",
            "--base-path",
            str(out / MODEL),
            "--name",
            MODEL,
            "--out",
            str(out),
            "--container-root",
            "/models",
        ]
    )
    return out


def cli(args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "160"}
    proc = subprocess.run(
        [*TFSUITE, *args], check=False, capture_output=True, text=True, env=env, cwd=ROOT
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"tfsuite {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _tfsuite_objects(engine: Any) -> tuple[list[str], list[str], list[str]]:
    flt = {"label": LABEL}
    return (
        [c.name for c in engine.containers.list(all=True, filters=flt)],
        [n.name for n in engine.networks.list(filters=flt)],
        [v.name for v in engine.volumes.list(filters=flt)],
    )


def _one_error_line(proc: subprocess.CompletedProcess[str], text: str) -> None:
    assert proc.returncode != 0, proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and text in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def deployed(engine: Any, suite_image: str, config_dir: Path) -> Iterator[dict[str, Any]]:
    before = _tfsuite_objects(engine)
    volumes_before = {v.name for v in engine.volumes.list()}
    proc = cli(["up", str(config_dir), "--image", suite_image, "--replicas", "2", "--port", "0"])
    endpoints = json.loads((config_dir / "endpoints.json").read_text())
    yield {"proc": proc, "endpoints": endpoints, "before": before, "volumes": volumes_before}
    cli(["down", "--run", endpoints["run_id"]], check=False)


def test_up_prints_and_writes_two_endpoints(deployed: dict[str, Any], config_dir: Path) -> None:
    lines = deployed["proc"].stdout.strip().splitlines()
    eps = deployed["endpoints"]["endpoints"]
    assert len(lines) == 2 and len(eps) == 2
    for line, ep in zip(lines, eps):
        assert f"grpc={ep['grpc']}" in line and f"rest={ep['rest']}" in line
        assert ep["grpc"].startswith("127.0.0.1:") and ep["rest"].startswith("127.0.0.1:")
    assert deployed["endpoints"]["models"][MODEL]["versions"] == [1, 2]
    assert deployed["endpoints"]["config_dir"] == str(config_dir.resolve())


def test_predict_through_both_ports_by_version_and_label(deployed: dict[str, Any]) -> None:
    from tfsuite.clients.grpc_client import TFServingClient
    from tfsuite.clients.rest_client import RestClient

    image = {"image_tensor": np.random.default_rng(0).integers(0, 255, (1, 96, 128, 3), np.uint8)}
    answers = []
    for ep in deployed["endpoints"]["endpoints"]:
        with TFServingClient(ep["grpc"], model=MODEL) as grpc_client:
            by_version = grpc_client.predict(image, MODEL, version=1)
            by_label = grpc_client.predict(image, MODEL, label="weight_quant")
            status = {s.version: s.state for s in grpc_client.status(MODEL)}
        with RestClient(ep["rest"], model=MODEL) as rest:
            rest_label = rest.predict(image, MODEL, label="original")
        assert status == {1: "AVAILABLE", 2: "AVAILABLE"}
        assert by_version["detection_boxes"].shape[0] == 1
        np.testing.assert_allclose(
            rest_label["detection_scores"], by_version["detection_scores"], atol=1e-5
        )
        answers.append((by_version, by_label))
    # Both containers serve the same versions: the same answers.
    for name in ("detection_boxes", "detection_scores"):
        np.testing.assert_allclose(answers[0][0][name], answers[1][0][name], atol=1e-5)
        np.testing.assert_allclose(answers[0][1][name], answers[1][1][name], atol=1e-5)


def test_detect_sharded_over_both(
    deployed: dict[str, Any], config_dir: Path, tmp_path: Path
) -> None:
    import cv2

    images = tmp_path / "images"
    images.mkdir()
    for i in range(12):
        frame = np.full((120, 160, 3), 40 + 15 * i, np.uint8)
        cv2.rectangle(frame, (10, 10), (90, 80), (255, 0, 0), -1)
        assert cv2.imwrite(str(images / f"{i + 1:06d}.jpg"), frame)
    out = tmp_path / "coco.json"
    endpoints = str(config_dir / "endpoints.json")
    proc = cli(
        [
            "detect",
            str(images),
            "--endpoints",
            endpoints,
            "--model",
            MODEL,
            "--min-score",
            "0.01",
            "--coco-json",
            str(out),
        ]
    )
    assert "# Servers Used" in proc.stderr and "2 / 2" in proc.stderr, proc.stderr
    records = json.loads(out.read_text())
    assert records and {r["image_id"] for r in records} <= set(range(1, 13))
    single = tmp_path / "single.json"
    grpc = deployed["endpoints"]["endpoints"][0]["grpc"]
    cli(
        [
            "detect",
            str(images),
            "--server",
            grpc,
            "--model",
            MODEL,
            "--min-score",
            "0.01",
            "--coco-json",
            str(single),
        ]
    )
    assert json.loads(single.read_text()) == records


def test_status_lists_containers_with_version_states(deployed: dict[str, Any]) -> None:
    proc = cli(["status"])
    for ep in deployed["endpoints"]["endpoints"]:
        line = next(li for li in proc.stdout.splitlines() if li.startswith(ep["container"]))
        assert "running" in line and f"{MODEL}: 1 AVAILABLE, 2 AVAILABLE" in line


def test_bad_inputs_start_nothing(
    engine: Any, deployed: dict[str, Any], suite_image: str, config_dir: Path, tmp_path: Path
) -> None:
    running = set(_tfsuite_objects(engine)[0])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        _one_error_line(
            cli(["up", str(config_dir), "--image", suite_image, "--port", str(port)], check=False),
            f"port {port} on 127.0.0.1 is already in use",
        )
    _one_error_line(
        cli(["up", str(config_dir), "--image", "tfsuite-never-built:0"], check=False),
        "is not present locally and cannot be pulled",
    )
    _one_error_line(
        cli(["up", str(config_dir), "--image", suite_image, "--gpus", "0"], check=False),
        "no NVIDIA runtime",
    )
    # A version that cannot load (an empty dir): the server retries it (as TF Serving does,
    # --max_num_load_retries) and never answers; on timeout up prints the log tail and removes
    # the container again.
    broken = tmp_path / "broken"
    shutil.copytree(config_dir, broken, ignore=shutil.ignore_patterns("endpoints.json"))
    shutil.rmtree(broken / MODEL / "2")
    (broken / MODEL / "2").mkdir()
    proc = cli(
        ["up", str(broken), "--image", suite_image, "--port", "0", "--timeout", "45"], check=False
    )
    _one_error_line(proc, "was not ready in time")
    assert "--- last 30 log lines of tfsuite-" in proc.stderr
    assert "Loading servable {name: ssd version: 2} failed" in proc.stderr  # container log
    assert not (broken / "endpoints.json").exists()
    assert set(_tfsuite_objects(engine)[0]) == running  # nothing of the failed runs is left


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_compose_cpu_profile_becomes_healthy_with_the_suite_image(
    engine: Any, suite_image: str, config_dir: Path
) -> None:
    """The stack itself, brought up by Debian's docker-compose: its /dev/tcp healthcheck
    turns healthy once the model is AVAILABLE, and Predict works through the published port."""
    import time

    from tfsuite.clients.grpc_client import TFServingClient

    grpc_port, rest_port = _free_port(), _free_port()
    project = f"tfsuite-test-{os.getpid()}"
    env = {
        **os.environ,
        "MODELS_DIR": str(config_dir),
        "MODEL_NAME": MODEL,
        "TFSERVING_CPU_IMAGE": suite_image,
        "GRPC_PORT": str(grpc_port),
        "REST_PORT": str(rest_port),
    }
    compose = ["docker-compose", "-p", project, "-f", str(ROOT / "compose" / "docker-compose.yml")]
    compose += ["--profile", "cpu"]
    up = subprocess.run(
        [*compose, "up", "-d"], capture_output=True, text=True, env=env, check=False
    )
    try:
        assert up.returncode == 0, up.stderr
        (container,) = engine.containers.list(
            filters={"label": f"com.docker.compose.project={project}"}
        )
        deadline = time.monotonic() + 180
        health = ""
        while time.monotonic() < deadline:
            container.reload()
            health = container.attrs["State"].get("Health", {}).get("Status", "")
            if health == "healthy" or container.status != "running":
                break
            time.sleep(1)  # polling the engine's health state; compose 1.29 has no --wait
        log = container.attrs["State"].get("Health", {}).get("Log", [])
        assert health == "healthy", (container.status, log[-2:])
        with TFServingClient(f"127.0.0.1:{grpc_port}", model=MODEL) as client:
            states = {s.version: s.state for s in client.status(MODEL)}
        assert states == {1: "AVAILABLE", 2: "AVAILABLE"}
    finally:
        subprocess.run([*compose, "down"], capture_output=True, env=env, check=False)
    assert not engine.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={project}"}
    )


def test_down_removes_exactly_what_up_started(
    engine: Any, deployed: dict[str, Any], config_dir: Path
) -> None:
    # Something else with the tfsuite label but another run id must survive.
    bystander = engine.networks.create(
        "tfsuite-bystander", labels={LABEL: "1", "tfsuite.run": "other"}
    )
    try:
        proc = cli(["down", str(config_dir)])
        assert "removed 2 container(s) and 1 network(s)" in proc.stdout
        containers, networks, volumes = _tfsuite_objects(engine)
        assert containers == deployed["before"][0] and volumes == deployed["before"][2]
        assert sorted(networks) == sorted([*deployed["before"][1], "tfsuite-bystander"])
        assert {v.name for v in engine.volumes.list()} == deployed["volumes"]
        assert not (config_dir / "endpoints.json").exists()
    finally:
        bystander.remove()
