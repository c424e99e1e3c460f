"""SIGTERM unwinds a command like Ctrl-C: its clean-up runs and nothing half-built is left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfsuite.export.basepath import TEMP_PREFIX


@pytest.mark.slow
def test_sigterm_during_export_leaves_no_staging_dir(classifier_pb: Path, tmp_path: Path) -> None:
    base = tmp_path / "base"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tfsuite",
            "export",
            str(classifier_pb),
            "--base-path",
            str(base),
            "--variants",
            "original,weight_quant,optimized,fp16_weights",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    try:
        deadline = time.monotonic() + 120
        # Wait for a variant to be mid-build (its hidden staging dir exists), then terminate.
        while not (base.is_dir() and any(p.name.startswith(TEMP_PREFIX) for p in base.iterdir())):
            assert proc.poll() is None, (
                f"export ended before it could be interrupted: {proc.stderr.read()}"
            )
            assert time.monotonic() < deadline, "no staging dir appeared"
            time.sleep(0.005)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted"
    assert [p.name for p in base.iterdir() if p.name.startswith(".")] == []
