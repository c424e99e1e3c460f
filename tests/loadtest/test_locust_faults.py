"""What a user sees when something is wrong: bad options, unknown versions, no server, a
version removed mid-run, Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from locust_files import hdr_files, locust_rows  # type: ignore[import-not-found]
from locust_support import (  # type: ignore[import-not-found]
    MODEL,
    Served,
    free_port,
    model_config_text,
    run_locust,
    start_locust,
)

from tfsuite.clients.grpc_client import TFServingClient
from tfsuite.loadtest.results import load_results

V1 = f"Predict {MODEL} v1 original"
V2 = f"Predict {MODEL} v2 weight_quant"


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "error:" in line]


def test_missing_model_is_one_locust_style_line() -> None:
    done = run_locust("--headless", "-u", "1", "-t", "1s", "--host", "127.0.0.1:1", timeout=60)
    assert done.returncode == 2
    (line,) = _error_lines(done.stderr)
    assert line.startswith("locust: error: --tfs-model is required")
    assert "Traceback" not in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("option", "says"),
    [
        (["--tfs-versions", "1,7"], "has no available version 7; available versions: 1, 2"),
        (
            ["--tfs-labels", "original,nope"],
            "has no label 'nope'; labels: original (v1), weight_quant (v2)",
        ),
    ],
)
def test_unknown_version_or_label_stops_at_start_listing_what_exists(
    served: Served, option: list[str], says: str
) -> None:
    done = run_locust(
        "--headless", "-u", "2", "-r", "2", "-t", "30s", "--host", served.grpc,
        "--tfs-model", MODEL, *option, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = _error_lines(done.stderr)
    assert says in line
    assert "Traceback" not in done.stderr
    assert "Run time limit set to 30 seconds" in done.stderr  # and it did not wait for it


@pytest.mark.slow
def test_unreachable_server_stops_with_a_clear_message() -> None:
    port = free_port()  # nothing listens there
    started = time.monotonic()
    done = run_locust(
        "--headless", "-u", "2", "-r", "2", "-t", "120s", "--host", f"127.0.0.1:{port}",
        "--tfs-model", MODEL, timeout=90,
    )  # fmt: skip
    assert time.monotonic() - started < 60  # stopped by the connect timeout, not -t
    assert done.returncode != 0
    (line,) = _error_lines(done.stderr)
    assert f"cannot reach TF Serving at 127.0.0.1:{port}" in line and "--host" in line
    assert "Traceback" not in done.stderr


def _wait_for_requests(rest: str, version: int, timeout: float = 60.0) -> None:
    """Until the server has answered ``version`` (readiness of the load, not a sleep)."""
    url = f"http://{rest}/monitoring/prometheus/metrics"
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5.0) as http:
        while time.monotonic() < deadline:
            text = http.get(url).text
            for line in text.splitlines():
                if (
                    line.startswith(":tensorflow:serving:request_count")
                    and f'model_version="{version}"' in line
                    and float(line.rsplit(" ", 1)[1]) > 50
                ):
                    return
            time.sleep(0.1)  # polling the server's counter
    raise AssertionError(f"no load reached version {version}")


@pytest.mark.slow
def test_version_removed_mid_run_counts_its_failures_by_code(
    own_server: Served, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = start_locust(
        "--headless", "-u", "4", "-r", "4", "-t", "10s", "--host", own_server.grpc,
        "--tfs-model", MODEL, "--tfs-versions", "1,2", "--csv", str(out / "run"),
        log=tmp_path / "run.log",
    )  # fmt: skip
    try:
        _wait_for_requests(own_server.rest, 2)
        base = Path(own_server.config.read_text().split('base_path: "')[1].split('"')[0])
        with TFServingClient(own_server.grpc, timeout=60) as client:
            client.reload_config(model_config_text(base, (1,)))  # version 2 goes away
        assert proc.wait(timeout=90) in (0, 1), (tmp_path / "run.log").read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    rows = locust_rows(out / "run_stats.csv")
    hdrs = hdr_files(out)
    assert int(rows[V1]["Failure Count"]) == 0 and int(rows[V1]["Request Count"]) > 0
    failures = int(rows[V2]["Failure Count"])
    assert failures > 0
    assert hdrs[V2]["errors_by_code"] == {"NOT_FOUND": failures}
    assert hdrs[V1]["errors_by_code"] == {}
    failure_rows = (out / "run_failures.csv").read_text()
    assert "NOT_FOUND" in failure_rows and "Servable not found" in failure_rows
    steps = {s.version: s for s in load_results(out / "results.json").steps}
    assert steps[2].errors_by_code == {"NOT_FOUND": failures} and not steps[1].errors_by_code


@pytest.mark.slow
def test_ctrl_c_still_writes_the_csvs_and_hdr_files(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = start_locust(
        "--headless", "-u", "2", "-r", "2", "--host", served.grpc, "--tfs-model", MODEL,
        "--tfs-versions", "1,2", "--csv", str(out / "run"), log=tmp_path / "run.log",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline
            and "All users spawned" not in (tmp_path / "run.log").read_text()
        ):
            time.sleep(0.1)  # polling the log for the start of the load
        _wait_for_requests(served.rest, 1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, (tmp_path / "run.log").read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    rows = locust_rows(out / "run_stats.csv")
    hdrs = hdr_files(out)
    for name in (V1, V2):
        assert hdrs[name]["count"] == int(rows[name]["Request Count"]) > 0
    results = load_results(out / "results.json")
    assert not results.run.complete and "interrupted" in results.run.incomplete_reason


@pytest.mark.slow
def test_tfsuite_locust_base_path_starts_and_stops_its_own_server(
    tiny_base: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "tfsuite", "locust", "--base-path", str(tiny_base),
         "--out", str(out), "--headless", "-u", "2", "-r", "2", "-t", "4s"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = load_results(out / "results.json")
    assert {s.version for s in results.steps} >= {1}
    assert all(s.server is not None for s in results.steps)  # scraped the embedded server
    assert results.run.server.metrics_url
