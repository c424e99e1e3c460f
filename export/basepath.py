"""The model base path: version numbering, the no-overwrite rule and atomic publishing.

``<base>/<N>/`` are TF Serving's version dirs, ``<base>/variants.json`` the manifest. Our own
temp dirs are hidden (``.tfsuite-*`` and :mod:`tfsuite.atomic`'s ``.<N>.*``) so a server polling the
base path never sees them; every other non-numeric dir is refused, because TF Serving would silently ignore it and a typo'd
version would go unnoticed.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tfsuite.atomic import atomic_write_dir
from tfsuite.export.errors import ExportUsageError
from tfsuite.export.manifest import DEFAULT_VERSIONS, MANIFEST_NAME, VariantsManifest
from tfsuite.export.paths import check_output_path
from tfsuite.serving_configs.model_config import parse_version_dir

__all__ = [
    "LOCK_NAME",
    "TEMP_PREFIX",
    "assign_versions",
    "base_path_lock",
    "content_sha256",
    "publish",
    "remove_version",
    "scan_base_path",
    "staging_dir",
    "sweep_stale_staging",
]

TEMP_PREFIX = ".tfsuite-"
#: Held (flock) by the export writing to a base path, which writes its pid into it.
LOCK_NAME = ".tfsuite.lock"
# tfsuite.atomic's temp dirs for a version dir: ".<N>.<random>.tmp" / ".old".
_ATOMIC_TEMP = re.compile(r"\.\d+\..+\.(tmp|old)")


def scan_base_path(base: Path) -> dict[int, Path]:
    """Existing version dirs by version (their real names kept: ``01`` is version 1); a usage
    error for anything TF Serving would misread. New versions are written as ``str(version)``."""
    check_output_path(base, "--base-path", directory=True)
    if not base.exists():
        return {}
    versions: dict[int, Path] = {}
    for entry in sorted(base.iterdir()):
        if entry.name == MANIFEST_NAME or entry.name.startswith("."):
            continue  # hidden: our own temp dirs/files (TEMP_PREFIX, tfsuite.atomic's), ignored by servers too
        if entry.is_dir():
            # TF Serving's parse: an existing "01" or "00000123" is version 1 / 123.
            version = parse_version_dir(entry.name)
            if version is None:
                raise ExportUsageError(
                    f"base path {str(base)!r} holds the non-numeric directory {entry.name!r}; "
                    "version dirs must be integers: move it out or choose another --base-path"
                )
            if version in versions:
                raise ExportUsageError(
                    f"base path {str(base)!r} holds {versions[version].name!r} and {entry.name!r}, "
                    f"which both name version {version}; remove or rename one"
                )
            versions[version] = entry
    return versions


def assign_versions(
    requested: Sequence[str], manifest: VariantsManifest | None, existing: set[int]
) -> dict[str, int]:
    """Variant -> version. Numbers already in the manifest never change; the card's defaults
    keep theirs; other variants take the next numbers above every number in use."""
    assigned: dict[str, int] = {}
    known = {v.variant: v.version for v in (manifest.variants if manifest else [])}
    claimed = set(known.values())
    taken = set(existing) | claimed
    for name in requested:
        if name in known:
            assigned[name] = known[name]
        elif name in DEFAULT_VERSIONS and DEFAULT_VERSIONS[name] not in claimed:
            # A dir the manifest does not know keeps its number claim here; the caller refuses
            # to overwrite it without --overwrite rather than silently renumbering.
            assigned[name] = DEFAULT_VERSIONS[name]
    floor = max([*DEFAULT_VERSIONS.values(), *taken, *assigned.values()])
    for name in requested:
        if name not in assigned:
            floor += 1
            assigned[name] = floor
        taken.add(assigned[name])
    return assigned


def staging_dir(base: Path, variant: str) -> Path:
    """An empty hidden dir next to the target (same filesystem, so the rename is atomic)."""
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{variant}-", dir=base))


def publish(staged: Path, target: Path, overwrite: bool) -> None:
    """Move a finished SavedModel into place; an existing target only with ``overwrite``.

    :func:`~tfsuite.atomic.atomic_write_dir` swaps the directory in (the old version is put
    back if the swap fails), so a server polling the base path sees a whole version or none.
    """
    if target.exists() and not overwrite:
        raise ExportUsageError(
            f"version {target.name} already exists in {str(target.parent)!r}; pass --overwrite to replace it"
        )

    def move_in(tmp: Path) -> None:
        for child in staged.iterdir():
            os.replace(child, tmp / child.name)  # same filesystem: renames, no copying

    atomic_write_dir(target, move_in)


def remove_version(target: Path) -> None:
    """Take a version dir away atomically (rename, then delete), so no half-deleted dir is loaded."""
    if target.exists():
        old = target.with_name(f"{TEMP_PREFIX}old-{target.name}-{os.getpid()}")
        os.rename(target, old)
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def base_path_lock(base: Path) -> Iterator[None]:
    """Hold the base path's export lock for the ``with`` block (one export per base path).

    The lock is an ``flock`` on ``<base>/.tfsuite.lock``, which exists only while an
    export runs (one left by a killed export is simply taken over). Another live export
    holding it is a usage error naming its pid. A base path this creates is removed again
    when the run is refused (a usage error) before writing anything.
    """
    created = not base.exists()
    base.mkdir(parents=True, exist_ok=True)
    path = base / LOCK_NAME
    try:
        fd = _lock_file(path, base)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            path.unlink(missing_ok=True)  # still locked: nobody else holds this inode
            os.close(fd)
    except ExportUsageError:
        if created and not any(base.iterdir()):
            base.rmdir()  # refused before writing anything: as if never run
        raise


def _lock_file(path: Path, base: Path) -> int:
    """An fd holding the lock on ``path`` (the file that is there now, not one unlinked by
    a finishing export between our open and our lock)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            raise ExportUsageError(
                f"another export (pid {owner}) is writing to {str(base)!r}; wait for it to "
                "finish or choose another --base-path"
            ) from None
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # that export finished and removed it: lock the new one


def sweep_stale_staging(base: Path) -> list[tuple[Path, int]]:
    """Remove the staging dirs an interrupted export left in ``base`` (``kill -9``, power
    loss): ``.tfsuite-<variant>-*``, ``.tfsuite-old-*`` and tfsuite.atomic's version temp
    dirs. Call it holding :func:`base_path_lock`: no live export owns them then. Returns the
    removed dirs with their sizes in bytes."""
    removed: list[tuple[Path, int]] = []
    if not base.is_dir():
        return removed
    for entry in sorted(base.iterdir()):
        stale = entry.name.startswith(TEMP_PREFIX) or _ATOMIC_TEMP.fullmatch(entry.name)
        if not stale or entry.name == LOCK_NAME or not entry.is_dir() or entry.is_symlink():
            continue
        size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
        shutil.rmtree(entry, ignore_errors=True)
        removed.append((entry, size))
    return removed


def content_sha256(version_dir: Path) -> str:
    """sha256 over a version directory's files: each file's relative path and bytes, in
    sorted order, so any changed, added, removed or truncated file changes it."""
    digest = hashlib.sha256()
    files = sorted(p for p in version_dir.rglob("*") if p.is_file())
    for path in files:
        digest.update(path.relative_to(version_dir).as_posix().encode() + b"\0")
        digest.update(str(path.stat().st_size).encode() + b"\0")
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
