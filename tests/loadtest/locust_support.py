"""Shared pieces of the Locust tests: the two-version model's config, the served endpoints,
and real ``locust`` processes started the way users start them (fixtures: conftest.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

LOCUSTFILE = str(Path(__file__).resolve().parents[2] / "loadtest" / "locustfile.py")
MODEL = "tiny"


def model_config_text(base: Path, versions: tuple[int, ...]) -> str:
    listed = " ".join(f"versions: {v}" for v in versions)
    labels = {1: "original", 2: "weight_quant"}
    label_lines = "".join(
        f'    version_labels {{ key: "{labels[v]}" value: {v} }}\n' for v in versions
    )
    return (
        "model_config_list {\n  config {\n"
        f'    name: "{MODEL}"\n    base_path: "{base}"\n    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ specific {{ {listed} }} }}\n"
        f"{label_lines}  }}\n}}\n"
    )


@dataclass(frozen=True)
class Served:
    grpc: str
    rest: str
    metrics_url: str
    config: Path


def _serve(base: Path, work: Path, launch_serve: object) -> Iterator[Served]:
    from tfsuite.serving_configs.monitoring import write_monitoring_config

    config = work / "models.config"
    config.write_text(model_config_text(base, (1, 2)))
    monitoring = write_monitoring_config(work / "monitoring.config")
    flags = [
        "--port=-1",
        "--rest_api_port=-1",
        f"--model_config_file={config}",
        f"--monitoring_config_file={monitoring}",
        "--file_system_poll_wait_seconds=0",
    ]
    with launch_serve(flags) as served:  # type: ignore[operator]
        rest = f"127.0.0.1:{served.rest_port}"
        _wait_available(rest, (1, 2))
        yield Served(
            grpc=f"127.0.0.1:{served.grpc_port}",
            rest=rest,
            metrics_url=f"http://{rest}/monitoring/prometheus/metrics",
            config=config,
        )


def _wait_available(rest: str, versions: tuple[int, ...], timeout: float = 120.0) -> None:
    """Readiness is the model's status, not an open port (the README says so)."""
    with httpx.Client(timeout=5.0) as http:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                body = http.get(f"http://{rest}/v1/models/{MODEL}").json()
                states = {
                    int(s["version"]): s["state"] for s in body.get("model_version_status", [])
                }
                if all(states.get(v) == "AVAILABLE" for v in versions):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)  # polling a readiness condition, not waiting out a duration
    raise AssertionError(f"versions {versions} of {MODEL} not available at {rest}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def locust_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", LOCUSTFILE, *args]


def locust_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "250"}
    env.pop("LOCUST_SKIP_MONKEY_PATCH", None)  # real Locust processes run patched
    return env


def run_locust(
    *args: str, timeout: float = 120.0, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """A locust process to its end (every test run has -t or a failing start)."""
    return subprocess.run(
        locust_cmd(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=locust_env(),
        cwd=cwd,
        check=False,
    )


def start_locust(*args: str, log: Path) -> subprocess.Popen[str]:
    handle = log.open("w")
    return subprocess.Popen(
        locust_cmd(*args), stdout=handle, stderr=subprocess.STDOUT, text=True, env=locust_env()
    )
