from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tfsuite.atomic import atomic_path, atomic_write_dir, atomic_write_json, atomic_write_text


def _listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_text_and_json_writes_replace_whole_files_readably(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.json"
    atomic_write_json(target, {"x": 1})
    atomic_write_json(target, {"x": 2})
    assert json.loads(target.read_text()) == {"x": 2}
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert _listing(target.parent) == ["a.json"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = atomic_write_text(tmp_path / "m.config", "old")
    with pytest.raises(RuntimeError), atomic_path(target, suffix=".png") as tmp:
        assert tmp.suffix == ".png" and tmp.name.startswith(".")
        tmp.write_text("half")
        raise RuntimeError("writer died")
    assert target.read_text() == "old"
    assert _listing(tmp_path) == ["m.config"]


def test_directory_swap_and_restore_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "1"
    atomic_write_dir(target, lambda d: (d / "saved_model.pb").write_text("v1"))
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    atomic_write_dir(target, lambda d: (d / "saved_model.pb").write_text("v2"))
    assert (target / "saved_model.pb").read_text() == "v2"

    def broken(d: Path) -> None:
        (d / "saved_model.pb").write_text("partial")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write_dir(target, broken)
    assert (target / "saved_model.pb").read_text() == "v2"
    assert _listing(tmp_path) == ["1"]
