"""What every ``results.json`` says about where and when it was measured (``run``): the
machine, the tfsuite version and git sha, UTC timestamps. Shared by ``tfsuite compare``
and the Locust runs. No TensorFlow."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import psutil

from tfsuite.loadtest.results import Machine

__all__ = ["git_sha", "machine_info", "now_iso", "tfsuite_version"]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def tfsuite_version() -> str:
    try:
        return metadata.version("tfsuite")
    except metadata.PackageNotFoundError:
        return ""


def git_sha() -> str | None:
    """The commit of the tfsuite source tree, when it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and sha else None


def _gpu() -> str | None:
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        names = [
            str(pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i)))
            for i in range(pynvml.nvmlDeviceGetCount())
        ]
    except Exception:  # NVML raises its own types when there is no driver
        return None
    return ", ".join(names) or None


def machine_info() -> Machine:
    return Machine(
        hostname=socket.gethostname(),
        platform=platform.platform(),
        python=platform.python_version(),
        cores=os.cpu_count() or 0,
        memory_bytes=int(psutil.virtual_memory().total),
        gpu=_gpu(),
    )
