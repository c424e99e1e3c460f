"""Atomic file and directory writes: nothing the suite writes is ever seen half-written.

Every writer in the suite (variants.json, version directories, TF Serving config files,
warmup records, COCO JSON, benchmark tables and traces, example models) goes through these:
the content is written to a temporary sibling of the target and renamed over it, so a
reader (or TF Serving polling the base path) sees the old file or the new one, never a part.
Temporary names start with ``.`` so servers and version scans ignore them.

Permissions: ``mkstemp``/``mkdtemp`` create 0600/0700; files are made 0644 and directories
0755 before the rename, because the reader is often a server in a container running as
another user.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_dir",
    "atomic_write_json",
    "atomic_write_text",
]

FILE_MODE = 0o644
DIR_MODE = 0o755


@contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it is renamed to ``target``.

    For writers that want a file name rather than bytes (``cv2.imwrite``, ``fig.savefig``,
    TFRecord writers): ``suffix`` keeps the extension such writers look at.
    """
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically; returns the target path."""
    path = Path(target)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def atomic_write_text(target: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``target`` atomically; returns the target path."""
    return atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: str | os.PathLike[str], data: Any, indent: int | None = 2) -> Path:
    """Write ``data`` as JSON (with a final newline) atomically; returns the target path."""
    return atomic_write_text(target, json.dumps(data, indent=indent) + "\n")


def atomic_write_dir(target: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Let ``write`` fill a temporary directory next to ``target``, then put it in its place.

    A directory cannot be replaced by one ``rename``: an existing ``target`` is moved aside
    first and deleted only once the new one is in place, and put back if anything fails, so
    ``target`` is complete whenever it exists.
    """
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    old: Path | None = None
    try:
        write(tmp)
        os.chmod(tmp, DIR_MODE)
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists() and (old / path.name).exists():
            os.replace(old / path.name, path)
        raise
    finally:
        if old is not None and path.exists():
            shutil.rmtree(old, ignore_errors=True)
    return path
