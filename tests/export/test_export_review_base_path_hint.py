"""`tfsuite inspect`/`export`/`freeze` given a model base path point at one of its versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfsuite.cli import cli, run


def test_inspect_of_a_base_path_names_a_version_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "models" / "ssd"
    for version in (1, 2, 10):
        (base / str(version)).mkdir(parents=True)
        (base / str(version) / "saved_model.pb").write_bytes(b"")
    (base / "variants.json").write_text("{}")
    with pytest.raises(SystemExit) as exc:
        run(cli, ["inspect", str(base)], prog_name="tfsuite")
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2
    assert err.splitlines() == [
        (
            f"error: {str(base)!r} is a model base path, not a SavedModel; give one version directory, "
            f"e.g. {str(base / '10')!r}"
        )
    ]


def test_plain_directory_keeps_the_not_a_saved_model_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "1").mkdir()  # a numbered dir without a SavedModel is not a version
    with pytest.raises(SystemExit) as exc:
        run(cli, ["inspect", str(tmp_path)], prog_name="tfsuite")
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2
    assert (
        err == f"error: {str(tmp_path)!r} is a directory without saved_model.pb: not a SavedModel"
    )
