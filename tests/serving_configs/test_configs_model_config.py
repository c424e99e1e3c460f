"""ModelServerConfig: parsing, TF Serving's validation messages, building from variants.json."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tfsuite.export.manifest import VariantsManifest
from tfsuite.serving_configs.errors import ConfigError
from tfsuite.serving_configs.model_config import (
    model_config_for,
    model_server_config,
    parse_model_config,
    parse_version_dir,
    read_model_config,
    version_dirs,
    write_model_config,
)

# TF Serving's documented example (g3doc/serving_config.md style).
EXAMPLE = """
model_config_list {
  config {
    name: "ssd"
    base_path: "/models/ssd"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "original" value: 1 }
    version_labels { key: "weight_quant" value: 2 }
  }
  config {
    name: "cls"
    base_path: "gs://bucket/cls"
    model_platform: "tensorflow"
  }
}
"""


MakeManifest = Callable[..., VariantsManifest]


def _one(name: str = "m", base_path: str = "/models/m", extra: str = "") -> str:
    return (
        f'model_config_list {{ config {{ name: "{name}" base_path: "{base_path}" '
        f'model_platform: "tensorflow" {extra} }} }}'
    )


def test_parse_documented_example() -> None:
    config = parse_model_config(EXAMPLE)
    ssd, cls = config.model_config_list.config
    assert list(ssd.model_version_policy.specific.versions) == [1, 2]
    assert dict(ssd.version_labels) == {"original": 1, "weight_quant": 2}
    assert cls.base_path == "gs://bucket/cls"
    assert cls.model_version_policy.WhichOneof("policy_choice") is None  # TF Serving: latest 1


def test_write_read_round_trip(tmp_path: Path) -> None:
    config = parse_model_config(EXAMPLE)
    path = write_model_config(tmp_path / "models.config", config)
    assert read_model_config(path) == config
    # The file is plain TF Serving text proto: the real message parses it without our code.
    direct = text_format.Parse(path.read_text(), model_server_config_pb2.ModelServerConfig())
    assert direct == config
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            (
                'model_config_list { config { name: "m" base_path: "/a" model_platform: "tensorflow" } '
                'config { name: "m" base_path: "/b" model_platform: "tensorflow" } }'
            ),
            "Illegal to list model m multiple times in config list",
        ),
        (
            _one(base_path="models/m"),
            "Expected model m to have an absolute path or URI; got base_path()=models/m",
        ),
        (_one(base_path=""), "Expected model m to have an absolute path or URI; got base_path()="),
        (
            _one(extra='version_labels { key: "canary-1" value: 1 }'),
            "labels are restricted to [a-zA-Z0-9_]+",
        ),
        (
            _one().replace('model_platform: "tensorflow"', 'model_platform: "onnx"'),
            "Model m requests unsupported platform onnx",
        ),
        (
            _one().replace('model_platform: "tensorflow"', ""),
            (
                "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
                "ModelServerConfig::model_platform, model name is m"
            ),
        ),
        (
            _one(extra="model_type: TENSORFLOW"),
            (
                "Illegal setting both ModelServerConfig::model_type (deprecated) and "
                "ModelServerConfig::model_platform, model name is m"
            ),
        ),
        (_one(name="a/b"), "contains '/', ':' or whitespace"),
    ],
)
def test_validation_messages(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_model_config(text)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_two_model_config_list_blocks_are_a_parse_error() -> None:
    # Text format does not merge a repeated singular field (TF Serving's C++ parser neither).
    text = _one() + "\n" + _one()
    with pytest.raises(
        ConfigError, match=r"ModelServerConfig: 2:\d+: .*multiple \"model_config_list\""
    ):
        parse_model_config(text)


def test_deprecated_model_type_alone_is_tensorflow() -> None:
    text = _one().replace('model_platform: "tensorflow"', "model_type: TENSORFLOW")
    assert parse_model_config(text).model_config_list.config[0].model_type == 1


def test_parse_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "models.config"
    path.write_text('model_config_list {\n  config {\n    nme: "x"\n  }\n}\n')
    with pytest.raises(ConfigError) as err:
        read_model_config(path)
    msg = str(err.value)
    assert msg.startswith(
        f"Invalid protobuf file: '{path}': "
        "Error parsing text-format tensorflow.serving.ModelServerConfig: 3:5: "
    )
    assert 'no field named "nme"' in msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        read_model_config(tmp_path / "nope.config")


def test_read_names_file_on_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "models.config"
    path.write_text(_one(base_path="relative"))
    with pytest.raises(ConfigError, match=f"^{path}: Expected model m"):
        read_model_config(path)


def test_write_refuses_invalid_and_leaves_nothing(tmp_path: Path) -> None:
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.add(name="m", base_path="rel", model_platform="tensorflow")
    with pytest.raises(ConfigError):
        write_model_config(tmp_path / "models.config", config)
    assert list(tmp_path.iterdir()) == []


def test_model_config_for_specific_uses_loadable_variants(
    tmp_path: Path, make_manifest: MakeManifest
) -> None:
    base = tmp_path / "ssd"
    for v in (1, 2):
        (base / str(v)).mkdir(parents=True)
    manifest = make_manifest(
        "ssd",
        {
            "original": (1, "ok"),
            "weight_quant": (2, "ok"),
            "trt_fp16": (3, "skipped"),
            "trt_int8": (4, "failed"),
        },
    )
    manifest.save(base)
    entry = model_config_for("ssd", base)  # manifest read from base/variants.json
    assert entry.base_path == str(base)
    assert entry.model_platform == "tensorflow"
    assert list(entry.model_version_policy.specific.versions) == [1, 2]
    assert dict(entry.version_labels) == {"original": 1, "weight_quant": 2}


def test_model_config_for_latest_and_all(tmp_path: Path, make_manifest: MakeManifest) -> None:
    base = tmp_path / "m"
    for v in (1, 2):
        (base / str(v)).mkdir(parents=True)
    manifest = make_manifest("ssd", {"original": (1, "ok"), "weight_quant": (2, "ok")})
    latest = model_config_for("m", base, manifest, policy="latest")
    assert latest.model_version_policy.latest.num_versions == 1
    # Only the version that will be loaded may carry a label.
    assert dict(latest.version_labels) == {"weight_quant": 2}
    every = model_config_for("m", base, manifest, policy="all")
    assert every.model_version_policy.WhichOneof("policy_choice") == "all"
    assert dict(every.version_labels) == {"original": 1, "weight_quant": 2}


def test_model_config_for_without_manifest_scans_version_dirs(tmp_path: Path) -> None:
    base = tmp_path / "m"
    for name in ("3", "1", "tmp", "0", "007", "-2", "+00009"):
        (base / name).mkdir(parents=True)
    (base / "5").write_text("a file, not a version dir")
    entry = model_config_for("m", base)
    # TF Serving's absl::SimpleAtoi: "007" is 7 and "+00009" is 9; "-2" cannot be requested.
    assert list(entry.model_version_policy.specific.versions) == [0, 1, 3, 7, 9]
    assert dict(entry.version_labels) == {}


def test_model_config_for_nothing_loadable(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    with pytest.raises(ConfigError, match="no loadable versions"):
        model_config_for("m", tmp_path / "m")


def test_model_config_for_container_path(tmp_path: Path) -> None:
    (tmp_path / "m" / "1").mkdir(parents=True)
    entry = model_config_for("m", "/models/m", local_path=tmp_path / "m")
    assert entry.base_path == "/models/m"
    assert list(entry.model_version_policy.specific.versions) == [1]


def test_combine_models(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name / "1").mkdir(parents=True)
    a = model_config_for("a", tmp_path / "a")
    b = model_config_for("b", tmp_path / "b")
    config = model_server_config([a, b])
    assert [c.name for c in config.model_config_list.config] == ["a", "b"]
    with pytest.raises(ConfigError, match="Illegal to list model a multiple times"):
        model_server_config([a, a])


def test_model_config_for_manifest_version_missing_on_disk(
    tmp_path: Path, make_manifest: MakeManifest
) -> None:
    base = tmp_path / "m"
    (base / "1").mkdir(parents=True)
    manifest = make_manifest("ssd", {"original": (1, "ok"), "weight_quant": (2, "ok")})
    expected = r"lists version 2 \(weight_quant\) as ok but .*m has no directory for it"
    with pytest.raises(ConfigError, match=expected):
        model_config_for("m", base, manifest)


def test_model_config_for_invalid_manifest(tmp_path: Path) -> None:
    base = tmp_path / "m"
    (base / "1").mkdir(parents=True)
    (base / "variants.json").write_text('{"model_name": 3')
    with pytest.raises(ConfigError, match=r"variants.json is not a valid variants.json .*re-run"):
        model_config_for("m", base)


def test_variant_name_unfit_for_a_label_gets_none(
    tmp_path: Path, make_manifest: MakeManifest
) -> None:
    base = tmp_path / "m"
    for v in (1, 2):
        (base / str(v)).mkdir(parents=True)
    manifest = make_manifest("ssd", {"original": (1, "ok"), "fp16-weights": (2, "ok")})
    entry = model_config_for("m", base, manifest)
    assert list(entry.model_version_policy.specific.versions) == [1, 2]
    assert dict(entry.version_labels) == {"original": 1}


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("00000123", 123),
        ("01", 1),
        ("0", 0),
        ("+7", 7),
        (" 12 ", 12),
        ("9223372036854775807", 2**63 - 1),
        ("9223372036854775808", None),
        ("-1", None),
        ("1.0", None),
        ("0x10", None),
        ("1e3", None),
        ("", None),
        ("++1", None),
        ("latest", None),
    ],
)
def test_parse_version_dir_is_simple_atoi(name: str, version: int | None) -> None:
    assert parse_version_dir(name) == version


def test_version_dirs_keep_real_names_and_report_duplicates(tmp_path: Path) -> None:
    for name in ("00000123", "00000124", "2", "002", "notes"):
        (tmp_path / name).mkdir()
    found = version_dirs(tmp_path)
    assert found.paths == {123: tmp_path / "00000123", 124: tmp_path / "00000124"}
    assert found.duplicates == {2: (tmp_path / "002", tmp_path / "2")}
    assert found.versions == [123, 124]
    assert "002, 2 all parse to version 2" in found.duplicate_message(2)


def test_model_config_for_accepts_leading_zero_dirs_and_refuses_duplicates(
    tmp_path: Path, make_manifest: MakeManifest
) -> None:
    base = tmp_path / "m"
    (base / "01").mkdir(parents=True)
    (base / "00000002").mkdir()
    make_manifest("ssd", {"original": (1, "ok"), "weight_quant": (2, "ok")}).save(base)
    entry = model_config_for("m", base)
    assert list(entry.model_version_policy.specific.versions) == [1, 2]
    assert dict(entry.version_labels) == {"original": 1, "weight_quant": 2}
    (base / "1").mkdir()
    with pytest.raises(ConfigError, match="01, 1 all parse to version 1"):
        model_config_for("m", base)
