"""The Docker engine: connect, say clearly when there is none, start ``dockerd`` when root.

Everything talks to the engine through the Docker SDK (``docker`` package) and the
environment's ``DOCKER_HOST`` (default: the local socket).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException

from tfsuite.deploy.errors import EngineUnavailable

__all__ = ["LABEL", "RUN_LABEL", "connect", "ensure_engine", "gpu_runtime"]

log = logging.getLogger(__name__)

#: Every container and network ``tfsuite up`` creates carries this label ...
LABEL = "tfsuite"
#: ... and this one, naming the run (``down`` removes one run's objects, nothing else).
RUN_LABEL = "tfsuite.run"

DOCKERD_LOG = Path("/tmp/tfsuite-dockerd.log")


def connect(timeout: float = 120.0) -> Any:
    """A ``docker.DockerClient`` whose engine answered a ping, or ``EngineUnavailable``."""
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as exc:
        reason = " ".join(str(exc).split())[:160]
        raise EngineUnavailable(
            f"no Docker engine is answering ({reason}); start dockerd, or serve without Docker: "
            "tfsuite serve --model_config_file=CONFIG_DIR/models.config ..."
        ) from None
    return client


def ensure_engine(wait_s: float = 60.0) -> Any:
    """Connect; if no engine answers and this is root with ``dockerd`` installed, start it.

    For ``make image``, CI and the Docker integration test (CI machines are clean Debian
    hosts with ``docker.io`` installed and nothing started). The daemon is left running.
    """
    try:
        return connect()
    except EngineUnavailable as first:
        dockerd = shutil.which("dockerd")
        if dockerd is None or os.geteuid() != 0:
            why = "dockerd is not installed" if dockerd is None else "not root"
            raise EngineUnavailable(f"{first} (cannot start dockerd here: {why})") from None
    log.info("starting %s (log: %s)", dockerd, DOCKERD_LOG)
    with DOCKERD_LOG.open("ab") as out:
        proc = subprocess.Popen(
            [dockerd], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = DOCKERD_LOG.read_text(errors="replace").strip().splitlines()[-3:]
            raise EngineUnavailable(
                f"dockerd exited with {proc.returncode}: {' | '.join(tail)} (see {DOCKERD_LOG})"
            )
        try:
            return connect()
        except EngineUnavailable:
            time.sleep(0.5)  # polling a daemon that is coming up; no event to wait on
    raise EngineUnavailable(f"dockerd did not answer within {wait_s:.0f} s (see {DOCKERD_LOG})")


def gpu_runtime(client: Any) -> bool:
    """Whether the engine can give containers NVIDIA GPUs (the ``nvidia`` runtime is set up)."""
    try:
        runtimes = client.info().get("Runtimes") or {}
    except DockerException:
        return False
    return "nvidia" in runtimes
