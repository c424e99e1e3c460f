"""What ``tfsuite up`` derives from a config dir, and the refusals that need no Docker engine.

Config dirs are written by the real ``tfsuite configs`` code (``ConfigBundle``) over base
paths laid out as ``tfsuite export`` leaves them (version dirs + variants.json).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tfsuite.cli import main
from tfsuite.deploy.errors import DeployError
from tfsuite.deploy.plan import DeploymentPlan, check_image_serves
from tfsuite.export.manifest import VariantRecord, VariantsManifest
from tfsuite.serving_configs.bundle import ConfigBundle, ModelSource


def _export_like(base: Path, statuses: dict[str, tuple[int, str]]) -> Path:
    for version, status in statuses.values():
        if status == "ok":
            (base / str(version)).mkdir(parents=True)
    VariantsManifest(
        model_name=base.name,
        source="/src/model.pb",
        source_format="frozen_graph",
        source_sha256="0" * 64,
        tf_version="2.17.0",
        variants=[
            VariantRecord(version=v, variant=name, precision="fp32", status=status)
            for name, (v, status) in statuses.items()
        ],
    ).save(base)
    return base


CPU_ONLY = {"original": (1, "ok"), "weight_quant": (2, "ok"), "trt_fp16": (3, "skipped")}
WITH_TRT = {"original": (1, "ok"), "weight_quant": (2, "ok"), "trt_fp16": (3, "ok")}


def _config_dir(tmp_path: Path, statuses: dict[str, tuple[int, str]], **kw: str) -> Path:
    out = tmp_path / "models"
    base = _export_like(out / "ssd", statuses)
    ConfigBundle.build([ModelSource(base)], out_dir=out, **kw).write(out)  # type: ignore[arg-type]
    return out


def test_container_root_layout_mounts_at_models(tmp_path: Path) -> None:
    out = _config_dir(tmp_path, CPU_ONLY, container_root="/models")
    plan = DeploymentPlan.from_config_dir(out)
    assert plan.mount_point == "/models" and plan.config_dir == out.resolve()
    (model,) = plan.models
    assert (model.name, model.versions, model.container_base_path) == ("ssd", [1, 2], "/models/ssd")
    assert model.host_base_path == out.resolve() / "ssd"
    assert model.labels == {"original": 1, "weight_quant": 2}
    assert plan.flags == [
        "--model_config_file=/models/models.config",
        "--enable_batching=true",
        "--batching_parameters_file=/models/batching_parameters.txt",
        "--monitoring_config_file=/models/monitoring.config",
    ]
    assert plan.trt_versions == []


def test_host_path_layout_mounts_at_the_same_path(tmp_path: Path) -> None:
    out = _config_dir(tmp_path, CPU_ONLY)
    plan = DeploymentPlan.from_config_dir(out)
    assert plan.mount_point == str(out.resolve())
    assert plan.flags[0] == f"--model_config_file={out.resolve()}/models.config"


def test_without_models_config_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["up", str(tmp_path / "empty")])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert "has no models.config" in err and "tfsuite configs" in err


def test_base_path_outside_the_mounted_dir_is_refused(tmp_path: Path) -> None:
    elsewhere = _export_like(tmp_path / "elsewhere" / "ssd", CPU_ONLY)
    out = tmp_path / "configs"
    ConfigBundle.build([ModelSource(elsewhere)], out_dir=out).write(out)
    with pytest.raises(DeployError, match=r"is outside .*configs, the only directory mounted"):
        DeploymentPlan.from_config_dir(out)


def test_missing_version_dir_is_refused_before_starting(tmp_path: Path) -> None:
    out = _config_dir(tmp_path, CPU_ONLY, container_root="/models")
    (out / "ssd" / "2").rmdir()
    with pytest.raises(DeployError, match="asks for version 2 of ssd"):
        DeploymentPlan.from_config_dir(out)


@pytest.mark.parametrize(
    ("image", "gpu", "why"),
    [
        ("tensorflow/serving:2.18.0-gpu", True, "built without TensorRT"),
        ("tensorflow/serving:2.19.1-gpu", True, "built without TensorRT"),
        ("tensorflow/serving:2.17.1", False, "not a TF Serving GPU image"),
        ("tfsuite:latest", False, "not a TF Serving GPU image"),
        ("tensorflow/serving:2.17.1-gpu", False, "needs a GPU"),
    ],
)
def test_trt_versions_refuse_images_without_tensorrt(
    tmp_path: Path, image: str, gpu: bool, why: str
) -> None:
    plan = DeploymentPlan.from_config_dir(_config_dir(tmp_path, WITH_TRT, container_root="/models"))
    assert plan.trt_versions == ["ssd:3 (trt_fp16)"]
    with pytest.raises(DeployError) as err:
        check_image_serves(image, plan, gpu=gpu)
    assert why in str(err.value) and "2.17.x-gpu" in str(err.value)


def test_trt_versions_are_served_by_217_gpu(tmp_path: Path) -> None:
    plan = DeploymentPlan.from_config_dir(_config_dir(tmp_path, WITH_TRT, container_root="/models"))
    check_image_serves("tensorflow/serving:2.17.1-gpu", plan, gpu=True)
    check_image_serves("registry.local/tensorflow/serving:2.16.1-gpu", plan, gpu=True)


def test_images_without_trt_versions_are_not_restricted(tmp_path: Path) -> None:
    plan = DeploymentPlan.from_config_dir(_config_dir(tmp_path, CPU_ONLY, container_root="/models"))
    for image in ("tensorflow/serving:2.19.1", "tfsuite:latest", "tensorflow/serving:2.18.0-gpu"):
        check_image_serves(image, plan, gpu=False)


def test_no_docker_engine_is_one_line_suggesting_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _config_dir(tmp_path, CPU_ONLY, container_root="/models")
    # An engine address where nothing listens: what a host without a running dockerd has.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    for args in (["up", str(out)], ["status"], ["down", "--all"]):
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: no Docker engine is answering"), err
        assert "tfsuite serve" in err[0]
    assert not (out / "endpoints.json").exists()


def test_gpus_and_replicas_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _config_dir(tmp_path, CPU_ONLY, container_root="/models")
    for args, text in (
        (["--gpus", "0,0"], "distinct GPU indices"),
        (["--gpus", "0", "--cpu"], "not both"),
        (["--gpus", "0,1", "--replicas", "2"], "--replicas is for CPU"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["up", str(out), *args])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and text in err, err
