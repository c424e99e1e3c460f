"""``make image``: the suite image, built locally with no registry (``python -m tfsuite.deploy.image``).

Three cached steps, each keyed by a content hash so a re-run only redoes what changed:

1. **Base image** ``tfsuite-base:bookworm-<hash>``: ``debootstrap --variant=minbase bookworm``
   (+ python3, python3-venv, ca-certificates) imported with ``docker import``. Key: the
   debootstrap arguments. Where a registry works, ``--base-image python:3.11-slim-bookworm``
   (the Dockerfile's default) skips this step.
2. **Wheelhouse** ``build/wheelhouse/``: the project's dependencies, pinned to what this
   checkout's venv runs (``pip freeze``), downloaded on the host for CPython 3.11 manylinux
   x86_64 (bookworm's python3), by the host's own pip and its configuration (index, proxy,
   CA bundle): pip inside a container may not trust the network's certificates. Key: the
   dependency list and pins. The tfsuite wheel itself is rebuilt every time (seconds).
3. **Image** ``compose/Dockerfile`` with ``BASE_IMAGE`` as a build arg, tagged
   ``tfsuite:latest`` and ``tfsuite:<hash>``; key: base + wheels + Dockerfile + sources. The
   engine's layer cache keeps the dependency layer when only the suite's code changed.

Nothing host-specific goes into the Dockerfile: the build reads wheels from its context.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from tfsuite.deploy.engine import ensure_engine
from tfsuite.deploy.errors import DeployError

__all__ = ["ImageBuild", "build_suite_image", "main"]

log = logging.getLogger(__name__)

BOOTSTRAP_SUITE = "bookworm"
BOOTSTRAP_PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_REPOSITORY = "tfsuite-base"
#: bookworm's python3 is 3.11 with glibc 2.36: every manylinux tag up to 2_36 runs on it.
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)] + [
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
]
PYTHON_VERSION = "3.11"
#: Not pinned from the venv: the suite itself (its wheel is built fresh) and packaging tools.
NOT_IN_IMAGE = {"tfsuite", "pip", "setuptools", "wheel"}


@dataclass
class ImageBuild:
    """What one ``build_suite_image`` did, with the time of each step (seconds)."""

    tag: str
    base_image: str
    timings: dict[str, float]
    cached: dict[str, bool]


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:12]


def _run(cmd: list[str], what: str, **kwargs: Any) -> None:
    log.info("%s: %s", what, " ".join(cmd[:6]) + (" ..." if len(cmd) > 6 else ""))
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
        raise DeployError(f"{what} failed (exit {proc.returncode}): {tail}")


def _image_exists(client: Any, name: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(name)
    except ImageNotFound:
        return False
    return True


# -- 1. base image ---------------------------------------------------------------------------
def ensure_base_image(client: Any, work: Path, mirror: str | None = None) -> tuple[str, bool]:
    """``tfsuite-base:bookworm-<hash>`` from a debootstrap rootfs; (tag, was cached)."""
    key = _digest(BOOTSTRAP_SUITE, "minbase", *BOOTSTRAP_PACKAGES)
    tag = f"{BASE_REPOSITORY}:{BOOTSTRAP_SUITE}-{key}"
    if _image_exists(client, tag):
        return tag, True
    if shutil.which("debootstrap") is None:
        raise DeployError(
            "debootstrap is not installed (apt-get install debootstrap), or pass "
            "--base-image python:3.11-slim-bookworm where a registry can be pulled from"
        )
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work, prefix=".rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        cmd = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(BOOTSTRAP_PACKAGES)}",
            BOOTSTRAP_SUITE,
            str(rootfs),
        ]
        _run(cmd + ([mirror] if mirror else []), "debootstrap")
        # What apt downloaded is not needed in the image.
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tarball = Path(tmp) / "rootfs.tar"
        _run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], "tar rootfs")
        repository, _, version = tag.partition(":")
        client.api.import_image_from_file(str(tarball), repository=repository, tag=version)
    if not _image_exists(client, tag):
        raise DeployError(f"docker import did not create {tag}")
    return tag, False


# -- 2. wheelhouse ---------------------------------------------------------------------------
def _dependencies(project: Path) -> list[str]:
    import tomllib  # Python >= 3.11, as the image's own python3

    with (project / "pyproject.toml").open("rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def _pins() -> list[str]:
    """This checkout's venv, pinned: the image runs what the tests ran."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pins = []
    for line in out.splitlines():
        name = line.partition("==")[0].strip().lower()
        if "==" in line and name not in NOT_IN_IMAGE:
            pins.append(line.strip())
    return sorted(pins)


def ensure_wheelhouse(project: Path, wheelhouse: Path) -> bool:
    """``wheelhouse/deps`` (dependencies + requirements.txt) and ``wheelhouse/app`` (tfsuite).

    Returns whether the dependency wheels were cached.
    """
    deps_dir, app_dir = wheelhouse / "deps", wheelhouse / "app"
    requirements, pins = _dependencies(project), _pins()
    key = _digest(PYTHON_VERSION, *PLATFORMS, *requirements, *pins)
    stamp = deps_dir / ".key"
    cached = stamp.is_file() and stamp.read_text().strip() == key
    if not cached:
        if deps_dir.exists():
            shutil.rmtree(deps_dir)
        deps_dir.mkdir(parents=True)
        (deps_dir / "requirements.txt").write_text("\n".join(requirements) + "\n")
        (deps_dir / "constraints.txt").write_text("\n".join(pins) + "\n")
        platform_args = [arg for p in PLATFORMS for arg in ("--platform", p)]
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--dest",
                str(deps_dir),
                "--only-binary=:all:",
                "--python-version",
                PYTHON_VERSION,
                "--implementation",
                "cp",
                *platform_args,
                "-r",
                str(deps_dir / "requirements.txt"),
                "-c",
                str(deps_dir / "constraints.txt"),
            ],
            "pip download (wheelhouse)",
        )
        stamp.write_text(key + "\n")
    if app_dir.exists():
        shutil.rmtree(app_dir)
    app_dir.mkdir(parents=True)
    _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(app_dir), "."],
        "pip wheel (tfsuite)",
        cwd=project,
    )
    return cached


# -- 3. the image ----------------------------------------------------------------------------
def _sources_digest(project: Path) -> str:
    """Hash of the files that go into the tfsuite wheel (tracked and untracked, not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        check=False,
        cwd=project,
        capture_output=True,
        text=True,
    )
    names = sorted(listed.stdout.split()) if listed.returncode == 0 else []
    if not names:  # not a git checkout: hash the package sources
        names = sorted(str(p.relative_to(project)) for p in project.rglob("*.py"))
    h = hashlib.sha256()
    for name in names:
        path = project / name
        if path.is_file() and not name.startswith(("tests/", "benchmarks/")):
            h.update(name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def build_suite_image(
    project: Path,
    tag: str = "tfsuite:latest",
    *,
    base_image: str | None = None,
    mirror: str | None = None,
) -> ImageBuild:
    """Build (or find cached) the suite image; see the module docstring."""
    project = project.resolve()
    dockerfile = project / "compose" / "Dockerfile"
    if not dockerfile.is_file():
        raise DeployError(f"{dockerfile} not found; run from the tfsuite checkout")
    timings: dict[str, float] = {}
    cached: dict[str, bool] = {}
    t0 = time.perf_counter()
    client = ensure_engine()
    timings["engine"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if base_image is None:
        base_image, cached["base"] = ensure_base_image(client, project / "build" / "image", mirror)
    timings["base"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    wheelhouse = project / "build" / "wheelhouse"
    cached["wheelhouse"] = ensure_wheelhouse(project, wheelhouse)
    timings["wheelhouse"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    base_id = client.images.get(base_image).id
    key = _digest(
        base_id,
        (wheelhouse / "deps" / ".key").read_text(),
        dockerfile.read_bytes(),
        (project / "compose" / "tfsuite-entrypoint.sh").read_bytes(),
        _sources_digest(project),
    )
    repository = tag.partition(":")[0]
    keyed = f"{repository}:{key}"
    cached["image"] = _image_exists(client, keyed)
    if not cached["image"]:
        from docker.errors import BuildError

        try:
            image, _ = client.images.build(
                path=str(project),
                dockerfile="compose/Dockerfile",
                tag=keyed,
                buildargs={"BASE_IMAGE": base_image},
                rm=True,
                forcerm=True,
                labels={"tfsuite.image-key": key},
            )
        except BuildError as exc:
            lines = [str(c.get("stream", c.get("error", ""))).strip() for c in exc.build_log]
            tail = " | ".join(line for line in lines if line)[-400:]
            raise DeployError(f"docker build failed: {exc.msg}: {tail}") from None
    else:
        image = client.images.get(keyed)
    image.tag(repository, tag.partition(":")[2] or "latest")
    timings["image"] = time.perf_counter() - t0
    return ImageBuild(tag=tag, base_image=base_image, timings=timings, cached=cached)


@click.command()
@click.option("--tag", default="tfsuite:latest", show_default=True, help="Tag of the image.")
@click.option(
    "--base-image",
    default=None,
    help="Base image with python3.11 (default: a local debootstrap bookworm image).",
)
@click.option("--mirror", default=None, help="Debian mirror for debootstrap.")
@click.option("--project", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
def image(tag: str, base_image: str | None, mirror: str | None, project: Path) -> None:
    """Build the suite image locally (no registry needed) and tag it."""
    done = build_suite_image(project, tag, base_image=base_image, mirror=mirror)
    steps = ", ".join(
        f"{step} {secs:.1f} s{' (cached)' if done.cached.get(step) else ''}"
        for step, secs in done.timings.items()
    )
    click.echo(f"built {done.tag} on {done.base_image}: {steps}")
    click.echo(json.dumps({"tag": done.tag, "timings_s": done.timings, "cached": done.cached}))


def main() -> None:
    from tfsuite.cli import run, setup_logging

    setup_logging(0)
    run(image, prog_name="python -m tfsuite.deploy.image")


if __name__ == "__main__":
    main()
