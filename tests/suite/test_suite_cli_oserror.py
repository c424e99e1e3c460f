"""`tfsuite.cli`: an OSError naming a path is one ``error:`` line; -v and -h behave as documented."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from tfsuite.cli import cli, run


def _run(
    command: click.Command, args: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        run(command, args, prog_name="tfsuite")
    return int(info.value.code or 0), capsys.readouterr().err


def test_configs_out_under_a_file_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "models" / "m"
    (base / "1").mkdir(parents=True)
    (base / "1" / "saved_model.pb").write_bytes(b"")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, err = _run(
        cli, ["configs", "--base-path", str(base), "--out", str(blocker / "cfg")], capsys
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: cannot use ") and "Not a directory" in lines[-1], err
    assert "Traceback" not in err


def test_os_error_without_a_file_name_is_still_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
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


def test_verbose_flag_lowers_the_log_level() -> None:
    import logging

    from tfsuite.cli import log_level

    assert log_level(0) == logging.INFO
    assert log_level(1) == logging.DEBUG < log_level(0)


def test_export_variants_takes_dash_h(capsys: pytest.CaptureFixture[str]) -> None:
    from tfsuite.cli import export_variants_main

    export_variants_main(["-h"])  # help returns (standalone_mode=False): no error exit
    out = capsys.readouterr().out
    assert out.startswith("Usage: export-variants [OPTIONS] SOURCE")
    assert "-h, --help" in out


def test_log_lines_go_to_stderr_not_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    # `export-variants --json` / `inspect --json` promise JSON on stdout; log records must not mix in.
    import logging

    from tfsuite.cli import log_handler

    handler = log_handler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.emit(
        logging.LogRecord(
            "t", logging.INFO, __file__, 1, "version 1 (original): up to date", None, None
        )
    )
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "version 1 (original): up to date" in captured.err
