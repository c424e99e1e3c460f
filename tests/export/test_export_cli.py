"""The export / inspect / freeze commands, in-process through click's runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tfsuite.cli import cli
from tfsuite.export.manifest import VariantsManifest


def _invoke(args: list[str]):
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_export_prints_choices_and_final_table(tiny_detector_pb: Path, tmp_path: Path) -> None:
    base = tmp_path / "det"
    result = _invoke(
        [
            "export",
            str(tiny_detector_pb),
            "--base-path",
            str(base),
            "--variants",
            "original,weight_quant,trt_fp16",
        ]
    )
    out = result.output
    assert "inputs (detected): image_tensor" in out
    assert (
        "outputs (detected): detection_boxes, detection_scores, detection_classes, num_detections"
        in out
    )
    for column in ("version", "variant", "status", "size", "ratio", "validation", "time"):
        assert column in out
    assert "weight_quant" in out and "skipped" in out
    manifest = VariantsManifest.load(base)
    assert [v.status for v in manifest.variants] == ["ok", "ok", "skipped"]
    again = _invoke(
        [
            "export",
            str(tiny_detector_pb),
            "--base-path",
            str(base),
            "--variants",
            "original,weight_quant",
        ]
    )
    assert "version 1 (original): up to date" in again.output


def test_export_overrides_and_json(tiny_detector_pb: Path, tmp_path: Path) -> None:
    result = _invoke(
        [
            "export",
            str(tiny_detector_pb),
            "--base-path",
            str(tmp_path / "d"),
            "--variants",
            "original",
            "--outputs",
            "detection_boxes,detection_scores",
            "--inputs",
            "image_tensor:?x?x?x3",
            "--json",
        ]
    )
    data = json.loads(result.output)
    assert [o["name"] for o in data["outputs"]] == ["detection_boxes", "detection_scores"]
    assert data["kind"] == "detector" and data["variants"][0]["status"] == "ok"


def test_inspect_saved_model_json_and_text(tiny_detector_export, tmp_path: Path) -> None:
    base, _ = tiny_detector_export
    data = json.loads(_invoke(["inspect", str(base / "2"), "--json"]).output)
    assert data["format"] == "saved_model" and data["kind"] == "detector"
    (sig,) = data["signatures"]
    assert sig["key"] == "serving_default" and sig["tags"] == ["serve"]
    assert sig["inputs"] == [
        {"name": "image_tensor", "dtype": "uint8", "shape": [None, None, None, 3]}
    ]
    assert {o["name"] for o in sig["outputs"]} == {
        "detection_boxes",
        "detection_scores",
        "detection_classes",
        "num_detections",
    }
    assert data["op_histogram"]["Dequantize"] > 0 and data["size_bytes"] > 0
    text = _invoke(["inspect", str(base / "1")]).output
    assert (
        "signature_def['serving_default']:" in text
        and "    inputs['image_tensor'] tensor_info:" in text
    )
    assert (
        "        dtype: DT_UINT8\n        shape: (-1, -1, -1, 3)\n        name: image_tensor:0"
        in text
    )


def test_inspect_reads_like_saved_model_cli(
    tiny_detector_export, capsys: pytest.CaptureFixture[str]
) -> None:
    """The signature block is line for line what ``saved_model_cli show --all`` prints."""
    from tensorflow.python.tools import saved_model_cli

    base, _ = tiny_detector_export
    saved_model_cli._show_all(str(base / "2"))
    theirs = capsys.readouterr().out
    ours = _invoke(["inspect", str(base / "2")]).output
    start = theirs.index("MetaGraphDef with tag-set")
    block = theirs[start : theirs.index("Method name is: tensorflow/serving/predict", start)]
    assert block.count("tensor_info:") == 5 and block in ours


def test_inspect_frozen_graph(tiny_classifier_pb: Path) -> None:
    data = json.loads(_invoke(["inspect", str(tiny_classifier_pb), "--json"]).output)
    assert data["format"] == "frozen_graph" and data["kind"] == "classifier"
    assert data["signatures"][0]["outputs"] == [
        {"name": "probabilities", "dtype": "float32", "shape": [None, 10]}
    ]
    assert data["node_count"] == sum(data["op_histogram"].values())


def test_freeze_then_export_round_trip(tiny_saved_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "frozen" / "model.pb"
    result = _invoke(["freeze", str(tiny_saved_model), "--out", str(out)])
    assert "inputs: pixels; outputs: scores" in result.output
    data = json.loads(_invoke(["inspect", str(out), "--json"]).output)
    assert [i["name"] for i in data["signatures"][0]["inputs"]] == ["pixels"]
    assert [o["name"] for o in data["signatures"][0]["outputs"]] == ["scores"]
    assert not any(op in data["op_histogram"] for op in ("VarHandleOp", "ReadVariableOp"))
    manifest = VariantsManifest.model_validate_json(
        _invoke(
            [
                "export",
                str(out),
                "--base-path",
                str(tmp_path / "m"),
                "--variants",
                "original",
                "--json",
            ]
        ).output
    )
    assert manifest.variants[0].status == "ok" and manifest.outputs[0].name == "scores"

    # Like export, freeze never replaces an existing file unless asked.
    before = out.read_bytes()
    again = CliRunner().invoke(cli, ["freeze", str(tiny_saved_model), "--out", str(out)])
    assert again.exit_code != 0 and "already exists; pass --overwrite" in str(
        again.exception or again.output
    )
    assert out.read_bytes() == before
    assert (
        "wrote"
        in _invoke(["freeze", str(tiny_saved_model), "--out", str(out), "--overwrite"]).output
    )


@pytest.mark.slow
def test_export_variants_console_script(tiny_classifier_pb: Path, tmp_path: Path) -> None:
    """The installed entry point: exit code and one-line stderr across a real process boundary
    (the successful path is covered in-process above; each process pays the TF import)."""
    exe = shutil.which("export-variants", path=str(Path(sys.executable).parent))
    assert exe, "export-variants console script is not installed in the venv"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    bad = subprocess.run(
        [exe, str(tiny_classifier_pb), "--base-path", str(tmp_path / "m"), "--variants", "bogus"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2 and "error: unknown variant(s) bogus" in bad.stderr
