"""``tfsuite.cli.run``: an OSError naming a path is one ``error:`` line, not a traceback."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from tfsuite.cli import cli, run


def _run(command: click.Command, args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        run(command, args, prog_name="tfsuite")
    return int(info.value.code or 0), capsys.readouterr().err


def test_configs_out_under_a_file_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "models" / "m"
    (base / "1").mkdir(parents=True)
    (base / "1" / "saved_model.pb").write_bytes(b"")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, err = _run(cli, ["configs", "--base-path", str(base), "--out", str(blocker / "cfg")], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: cannot use ") and "Not a directory" in lines[-1], err
    assert "Traceback" not in err


def test_os_error_without_a_file_name_is_still_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    @click.command()
    def broken() -> None:
        raise ConnectionResetError(104, "Connection reset by peer")

    with pytest.raises(ConnectionResetError):
        run(broken, [], prog_name="broken")


def test_os_error_with_two_paths_names_both(capsys: pytest.CaptureFixture[str]) -> None:
    @click.command()
    def move() -> None:
        raise PermissionError(13, "Permission denied", "/a/src", None, "/b/dst")

    code, err = _run(move, [], capsys)
    assert code == 2
    assert err.strip() == (
        "error: cannot use '/a/src' -> '/b/dst': Permission denied; check the path (and its parent directories)"
    )
