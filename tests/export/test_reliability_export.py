"""Reliability of the exporter (issue 10, case 10).

- Every published version's content digest is in ``variants.json`` and checked on every
  re-run: a damaged version is reported (one line, non-zero exit), rebuilt only with
  ``--overwrite``.
- The staging dirs a ``kill -9``-ed export leaves behind are swept by the next run; a live
  export's are not (a second export into the same base path is refused instead).

Real exports of a TF2 SavedModel with variables, a real export process killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import tensorflow as tf

from tfsuite.cli import cli, run
from tfsuite.export.api import export_variants
from tfsuite.export.basepath import LOCK_NAME, TEMP_PREFIX, content_sha256
from tfsuite.export.errors import ExportUsageError
from tfsuite.export.manifest import VariantsManifest

VARIANTS = "original,weight_quant"
WAIT = 300.0  # upper bound of a wait for the export process to reach a state (never a sleep)


def _export(source: Path, base: Path, **kwargs: object):
    return export_variants(source, base, variants=VARIANTS, progress=False, **kwargs)


def test_digest_per_version_is_recorded_and_a_truncated_version_is_reported_damaged(
    tiny_saved_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "m"
    manifest = _export(tiny_saved_model, base)
    for record in manifest.variants:
        assert record.status == "ok"
        assert record.content_sha256 == content_sha256(base / str(record.version))
    pb = base / "2" / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:1000])

    # The API refuses, naming the version; nothing is touched.
    with pytest.raises(ExportUsageError) as err:
        _export(tiny_saved_model, base)
    assert "version 2 (weight_quant)" in str(err.value) and "damaged" in str(err.value)
    assert "--overwrite" in str(err.value)
    assert pb.stat().st_size == 1000

    # The CLI says so in one line and exits non-zero.
    with pytest.raises(SystemExit) as exited:
        run(
            cli, ["export", str(tiny_saved_model), "--base-path", str(base), "--variants", VARIANTS]
        )
    assert exited.value.code not in (0, None)
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and "damaged" in error_lines[0], err
    assert "Traceback" not in err

    # --overwrite rebuilds it: loadable again, digest on record matches.
    rebuilt = _export(tiny_saved_model, base, overwrite=True)
    record = rebuilt.by_version(2)
    assert record is not None and record.status == "ok"
    assert record.content_sha256 == content_sha256(base / "2")
    assert VariantsManifest.load(base).by_version(2).content_sha256 == record.content_sha256
    assert pb.stat().st_size > 1000
    tf.saved_model.load(str(base / "2"))
    # ... and the next run calls it up to date, verified.
    _export(tiny_saved_model, base)


def test_manifest_without_digests_gets_them_on_the_next_run(
    tiny_saved_model: Path, tmp_path: Path
) -> None:
    base = tmp_path / "m"
    manifest = _export(tiny_saved_model, base)
    for record in manifest.variants:
        record.content_sha256 = ""  # as written before digests existed
    manifest.save(base)
    _export(tiny_saved_model, base)
    for record in VariantsManifest.load(base).variants:
        assert record.content_sha256 == content_sha256(base / str(record.version))


_EXPORT_SCRIPT = """
import sys
from tfsuite.export.api import export_variants
export_variants(sys.argv[1], sys.argv[2], variants=sys.argv[3], progress=False)
"""


def _staging(base: Path) -> list[Path]:
    if not base.is_dir():
        return []
    return [p for p in base.iterdir() if p.name.startswith(TEMP_PREFIX) and p.is_dir()]


@contextmanager
def _export_process(source: Path, base: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real export process, yielded once it has a staging dir in ``base``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _EXPORT_SCRIPT, str(source), str(base), VARIANTS],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Watch the base path until the process stages a variant (or ends: then fail).
        deadline = time.monotonic() + WAIT
        tick = threading.Event()
        while proc.poll() is None and not _staging(base) and time.monotonic() < deadline:
            tick.wait(0.002)
        assert _staging(base), "the export never staged a variant"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.mark.slow
def test_kill_9_mid_export_leaves_staging_dirs_that_the_next_run_sweeps(
    tiny_saved_model: Path, tmp_path: Path
) -> None:
    base = tmp_path / "m"
    with _export_process(tiny_saved_model, base) as proc:
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
    left = _staging(base)
    assert left, "kill -9 left no staging dir: the test proves nothing"
    assert (base / LOCK_NAME).exists()  # the dead export's lock file, taken over below
    manifest = _export(tiny_saved_model, base)
    assert _staging(base) == []
    assert [r.status for r in manifest.variants] == ["ok", "ok"]
    assert {p.name for p in base.iterdir()} == {"1", "2", "variants.json"}


@pytest.mark.slow
def test_a_live_exports_staging_dir_is_not_swept_and_a_second_export_is_refused(
    tiny_saved_model: Path, tmp_path: Path
) -> None:
    base = tmp_path / "m"
    with _export_process(tiny_saved_model, base) as proc:
        os.kill(proc.pid, signal.SIGSTOP)  # hold it mid-export, its staging dir in place
        try:
            staged = _staging(base)
            assert staged
            with pytest.raises(ExportUsageError) as err:
                _export(tiny_saved_model, base)
            assert f"another export (pid {proc.pid})" in str(err.value)
            assert all(p.is_dir() for p in staged)  # not swept: its owner is alive
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        assert proc.wait(WAIT) == 0  # the first export finishes undisturbed
    assert _staging(base) == []
    assert [r.status for r in VariantsManifest.load(base).variants] == ["ok", "ok"]
