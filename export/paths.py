"""Checking where a command will write before any work starts.

``mkdir(parents=True)`` on a path under a regular file fails deep inside the write with a
traceback; users get one line naming the option and the file in the way instead.
"""

from __future__ import annotations

from pathlib import Path

from tfsuite.export.errors import ExportUsageError

__all__ = ["check_output_path"]


def check_output_path(path: Path, option: str, *, directory: bool) -> Path:
    """``path`` may be created: no parent of it is a file, and it is a ``directory`` or a file
    as asked when it exists already. Returns ``path``."""
    path = Path(path)
    if path.exists() and path.is_dir() != directory:
        want = (
            "a directory (it is created if missing)" if directory else "a file name like model.pb"
        )
        raise ExportUsageError(
            f"{option} {str(path)!r} is a {'directory' if path.is_dir() else 'file'}; give {want}"
        )
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise ExportUsageError(
                f"{option} {str(path)!r}: {str(parent)!r} is a file, not a directory"
            )
    return path
