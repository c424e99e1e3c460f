"""Each bad input: one-line error, non-zero exit, nothing written (issue 2, "Bad input")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfsuite.cli import cli, run


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        run(cli, args, prog_name="tfsuite")
    err = capsys.readouterr().err.strip()
    return int(exc.value.code or 0), err


def _assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code != 0
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return tmp_path / "models" / "m"


def test_missing_source(base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(["export", str(tmp_path / "nope.pb"), "--base-path", str(base)], capsys)
    _assert_one_line_error(code, err, "does not exist")
    assert not base.exists()


@pytest.mark.parametrize("content", [b"this is not a protobuf \xff\xfe", b"hello world"])
def test_not_a_graph_def(
    content: bytes, base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "model.pb"
    bogus.write_bytes(content)
    code, err = _run(["export", str(bogus), "--base-path", str(base)], capsys)
    _assert_one_line_error(code, err, "not a GraphDef or SavedModel")
    assert not base.exists()


def test_directory_that_is_not_a_saved_model(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    code, err = _run(["export", str(tmp_path / "empty"), "--base-path", str(base)], capsys)
    _assert_one_line_error(code, err, "not a SavedModel")
    assert not base.exists()


def test_no_detectable_input(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = tf.Graph()
    with graph.as_default():
        tf.identity(tf.constant(np.ones((4, 4), np.float32)) * 2.0, name="out")
    path = tmp_path / "constant.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString())
    code, err = _run(["export", str(path), "--base-path", str(base)], capsys)
    _assert_one_line_error(code, err, "no input detected", "--inputs")
    assert not base.exists()


def test_unknown_output_lists_candidates(
    tiny_classifier_pb: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(
        ["export", str(tiny_classifier_pb), "--base-path", str(base), "--outputs", "logits"], capsys
    )
    _assert_one_line_error(code, err, "'logits'", "candidates", "probabilities")
    assert not base.exists()


def test_unknown_input_name(
    tiny_classifier_pb: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(
        [
            "export",
            str(tiny_classifier_pb),
            "--base-path",
            str(base),
            "--inputs",
            "pixels:1x32x32x3",
        ],
        capsys,
    )
    _assert_one_line_error(code, err, "'pixels'", "input")
    assert not base.exists()


def test_unknown_variants_list_valid_ones(
    tiny_classifier_pb: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(
        [
            "export",
            str(tiny_classifier_pb),
            "--base-path",
            str(base),
            "--variants",
            "original,int4,trt",
        ],
        capsys,
    )
    _assert_one_line_error(code, err, "int4", "trt", "valid:", "weight_quant", "trt_int8")
    assert not base.exists()


def test_base_path_with_non_numeric_dir(
    tiny_classifier_pb: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (base / "backup").mkdir(parents=True)
    code, err = _run(["export", str(tiny_classifier_pb), "--base-path", str(base)], capsys)
    _assert_one_line_error(code, err, "non-numeric", "backup")
    assert [p.name for p in base.iterdir()] == ["backup"]


def test_version_that_would_be_overwritten(
    tiny_classifier_pb: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (base / "2").mkdir(parents=True)
    code, err = _run(
        [
            "export",
            str(tiny_classifier_pb),
            "--base-path",
            str(base),
            "--variants",
            "original,weight_quant",
        ],
        capsys,
    )
    _assert_one_line_error(code, err, "version 2 already exists", "--overwrite")
    assert [p.name for p in base.iterdir()] == ["2"]


def test_calibration_dir_without_images(
    tiny_classifier_pb: Path, base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calib = tmp_path / "calib"
    calib.mkdir()
    (calib / "notes.txt").write_text("no images here")
    code, err = _run(
        [
            "export",
            str(tiny_classifier_pb),
            "--base-path",
            str(base),
            "--calibration-data",
            str(calib),
        ],
        capsys,
    )
    _assert_one_line_error(code, err, "holds no images")
    assert not base.exists()


def test_bad_shape_and_tolerance_syntax(
    tiny_classifier_pb: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(
        [
            "export",
            str(tiny_classifier_pb),
            "--base-path",
            str(base),
            "--input-shape",
            "input:1xbigx3",
        ],
        capsys,
    )
    _assert_one_line_error(code, err, "cannot read shape")
    code, err = _run(
        ["export", str(tiny_classifier_pb), "--base-path", str(base), "--tolerance", "loose"],
        capsys,
    )
    _assert_one_line_error(code, err, "VARIANT.METRIC=NUMBER")
    assert not base.exists()


def test_changed_outputs_on_rerun_need_overwrite(
    tiny_classifier_pb: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same source, other --outputs: the published versions no longer match what was asked."""
    from tfsuite.export.api import export_variants

    export_variants(tiny_classifier_pb, base, variants="original", progress=False)
    manifest = (base / "variants.json").read_bytes()
    listing = sorted(p.name for p in base.iterdir())
    args = [
        "export",
        str(tiny_classifier_pb),
        "--base-path",
        str(base),
        "--variants",
        "original",
        "--outputs",
        "Relu",
    ]
    code, err = _run(args, capsys)
    _assert_one_line_error(code, err, "outputs probabilities:?x10", "Relu:", "--overwrite")
    assert (base / "variants.json").read_bytes() == manifest and sorted(
        p.name for p in base.iterdir()
    ) == listing


def test_freeze_and_inspect_bad_paths(
    tiny_classifier_pb: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(["inspect", str(tmp_path / "nope")], capsys)
    _assert_one_line_error(code, err, "does not exist")
    junk = tmp_path / "junk.pb"
    junk.write_bytes(b"hello world")
    code, err = _run(["inspect", str(junk)], capsys)
    _assert_one_line_error(code, err, "not a GraphDef or SavedModel")
    out = tmp_path / "out" / "model.pb"
    code, err = _run(["freeze", str(tiny_classifier_pb), "--out", str(out)], capsys)
    _assert_one_line_error(code, err, "not a SavedModel")
    code, err = _run(["freeze", str(tmp_path / "nope"), "--out", str(out)], capsys)
    _assert_one_line_error(code, err, "does not exist")
    assert not (tmp_path / "out").exists()


def test_paths_under_a_file(
    tiny_classifier_pb: Path,
    tiny_saved_model: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A parent that is a regular file is named in one line, not a mkdir traceback."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    for args in (
        ["export", str(tiny_classifier_pb), "--base-path", str(blocker / "m")],
        ["freeze", str(tiny_saved_model), "--out", str(blocker / "m.pb")],
        ["examples", "--out", str(blocker / "ex")],
    ):
        code, err = _run(args, capsys)
        _assert_one_line_error(code, err, f"{str(blocker)!r} is a file, not a directory")
    assert blocker.read_text() == "a file"


@pytest.mark.parametrize("flag", ["--inputs", "--input-shape"])
def test_pinned_shape_that_does_not_fit(
    flag: str,
    tiny_classifier_pb: Path,
    tiny_saved_model: Path,
    base: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for source, name in ((tiny_classifier_pb, "input"), (tiny_saved_model, "pixels")):
        code, err = _run(
            [
                "export",
                str(source),
                "--base-path",
                str(base),
                "--variants",
                "original",
                flag,
                f"{name}:1x32",
            ],
            capsys,
        )
        _assert_one_line_error(code, err, "does not import", "rank", "--inputs/--input-shape")
    assert not base.exists()


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (
            ["--tolerance", "weight_quant.max_rel=0.2"],
            ["unknown metric 'max_rel'", "max_rel_error"],
        ),
        (["--tolerance", "int4.max_rel_error=0.2"], ["unknown variant 'int4'", "weight_quant"]),
        (["--model-name", "my model/v1"], ["--model-name", "'/', ':' or whitespace"]),
    ],
)
def test_bad_options_write_nothing(
    extra: list[str],
    needles: list[str],
    tiny_classifier_pb: Path,
    base: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = _run(
        [
            "export",
            str(tiny_classifier_pb),
            "--base-path",
            str(base),
            "--variants",
            "original",
            *extra,
        ],
        capsys,
    )
    _assert_one_line_error(code, err, *needles)
    assert not base.exists()


@pytest.mark.parametrize(
    "option", ["--max-workspace", "--minimum-segment-size", "--max-cached-engines"]
)
def test_trt_knobs_must_be_positive(
    option: str, tiny_classifier_pb: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Typed click options: click's own usage error (exit 2), before any work."""
    code, err = _run(
        ["export", str(tiny_classifier_pb), "--base-path", str(base), option, "0"], capsys
    )
    assert code == 2 and f"Invalid value for '{option}'" in err and "Traceback" not in err
    assert not base.exists()
