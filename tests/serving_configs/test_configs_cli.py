"""``tfsuite configs``: every file it writes parses back with TF Serving's protos."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from click.testing import CliRunner
from google.protobuf import text_format
from google.protobuf.message import Message
from tensorflow_serving.config import model_server_config_pb2

from tfsuite.cli import main
from tfsuite.errors import UsageError
from tfsuite.export.manifest import VariantsManifest
from tfsuite.serving_configs.batching import BatchingOptions, BatchingParameters
from tfsuite.serving_configs.bundle import ConfigBundle
from tfsuite.serving_configs.cli import configs
from tfsuite.serving_configs.errors import ConfigError
from tfsuite.serving_configs.monitoring import MonitoringConfig

M = TypeVar("M", bound=Message)
FILES = ("models.config", "batching_parameters.txt", "monitoring.config")


def _export_like(base: Path, make_manifest: Callable[..., VariantsManifest], name: str) -> None:
    """A base path as `tfsuite export` leaves it: version dirs for ok variants + variants.json."""
    for version in (1, 2):
        (base / str(version)).mkdir(parents=True)
    statuses = {
        "original": (1, "ok"),
        "weight_quant": (2, "ok"),
        "trt_fp16": (3, "skipped"),
        "trt_int8": (4, "skipped"),
    }
    make_manifest(name, statuses).save(base)


@pytest.fixture()
def models_dir(tmp_path: Path, make_manifest: Callable[..., VariantsManifest]) -> Path:
    out = tmp_path / "models"
    _export_like(out / "ssd", make_manifest, "ssd_mobilenet_v2_tiny")
    _export_like(out / "cls", make_manifest, "mobilenet_v2")
    return out


def _parse(path: Path, message: M) -> M:
    return text_format.Parse(path.read_text(), message)


def _invoke(args: list[str]):
    return CliRunner().invoke(configs, args, catch_exceptions=True)


def test_writes_three_files_that_tf_serving_protos_parse(models_dir: Path) -> None:
    result = _invoke(
        [
            "--base-path", str(models_dir / "ssd"),
            "--base-path", str(models_dir / "cls"),
            "--name", "ssd", "--name", "cls",
            "--out", str(models_dir),
            "--container-root", "/models",
            "--max-batch-size", "32",
            "--batch-timeout-micros", "1000",
            "--num-batch-threads", "4",
            "--max-enqueued-batches", "100",
            "--allowed-batch-sizes", "8,16,32",
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "batching_parameters.txt" in result.output.replace("\n", "")
    for name in FILES:
        assert (models_dir / name).is_file()

    # The real TF Serving message, parsed without any tfsuite code.
    cfg = text_format.Parse(
        (models_dir / "models.config").read_text(), model_server_config_pb2.ModelServerConfig()
    )
    ssd, cls = cfg.model_config_list.config
    assert (ssd.name, ssd.base_path, ssd.model_platform) == ("ssd", "/models/ssd", "tensorflow")
    assert cls.base_path == "/models/cls"
    assert list(ssd.model_version_policy.specific.versions) == [1, 2]
    assert dict(ssd.version_labels) == {"original": 1, "weight_quant": 2}

    batching = _parse(models_dir / "batching_parameters.txt", BatchingParameters())
    assert BatchingOptions.from_proto(batching) == BatchingOptions(
        max_batch_size=32,
        batch_timeout_micros=1000,
        num_batch_threads=4,
        max_enqueued_batches=100,
        allowed_batch_sizes=(8, 16, 32),
    )
    mon = _parse(models_dir / "monitoring.config", MonitoringConfig())
    assert mon.prometheus_config.enable
    assert mon.prometheus_config.path == "/monitoring/prometheus/metrics"
    # And our own reader agrees with the bare protos.
    bundle = ConfigBundle.read(models_dir)
    assert (bundle.model_config, bundle.batching, bundle.monitoring) == (cfg, batching, mon)


def test_defaults_local_paths_and_manifest_names(models_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cfg"
    result = _invoke(["--base-path", str(models_dir / "ssd"), "--out", str(out), "--policy", "all"])
    assert result.exit_code == 0, result.output
    cfg = _parse(out / "models.config", model_server_config_pb2.ModelServerConfig())
    (model,) = cfg.model_config_list.config
    assert model.name == "ssd_mobilenet_v2_tiny"  # from variants.json
    assert model.base_path == str((models_dir / "ssd").resolve())
    assert model.model_version_policy.WhichOneof("policy_choice") == "all"
    # No batching option given: nothing set, so TF Serving's own defaults apply on the server.
    batching = _parse(out / "batching_parameters.txt", BatchingParameters())
    assert batching.ListFields() == []
    assert BatchingOptions.from_proto(batching).max_batch_size == 1000


def test_allowed_sizes_imply_max_batch_size(models_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cfg"
    base = str(models_dir / "ssd")
    result = _invoke(["--base-path", base, "--out", str(out), "--allowed-batch-sizes", "4,8"])
    assert result.exit_code == 0, result.output
    batching = _parse(out / "batching_parameters.txt", BatchingParameters())
    assert batching.max_batch_size.value == 8


@pytest.mark.parametrize(
    ("extra", "error", "message"),
    [
        (["--max-batch-size", "32", "--allowed-batch-sizes", "8,16"], ConfigError,
         "Last entry in allowed_batch_sizes must match max_batch_size; last entry was 16"),
        (["--allowed-batch-sizes", "8,x"], ConfigError, "comma-separated integers"),
        (["--num-batch-threads", "0"], ConfigError, "num_batch_threads must be positive"),
        (["--name", "a", "--name", "b"], UsageError, "give one --name per --base-path"),
        (["--name", "a/b"], ConfigError, "contains '/'"),
        (["--container-root", "/models"], ConfigError, "is not inside the output directory"),
        (["--container-root", "models"], ConfigError, "must be an absolute path"),
        (["--metrics-path", "metrics"], ConfigError, "must start with '/'"),
    ],
)  # fmt: skip
def test_bad_input_writes_nothing(
    models_dir: Path, tmp_path: Path, extra: list[str], error: type[Exception], message: str
) -> None:
    out = tmp_path / "cfg"
    result = _invoke(["--base-path", str(models_dir / "ssd"), "--out", str(out), *extra])
    assert isinstance(result.exception, error), result.output
    assert message in str(result.exception)
    assert not out.exists() or list(out.iterdir()) == []


def test_same_model_twice(models_dir: Path, tmp_path: Path) -> None:
    ssd = str(models_dir / "ssd")
    result = _invoke(["--base-path", ssd, "--base-path", ssd, "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, ConfigError)
    expected = "Illegal to list model ssd_mobilenet_v2_tiny multiple times in config list"
    assert expected in str(result.exception)


def test_front_door_prints_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["configs", "--base-path", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: base path") and "is not a directory" in err
    assert "\n" not in err and "Traceback" not in err
