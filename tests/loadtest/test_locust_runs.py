"""Real ``locust`` processes against a real ``tfsuite serve`` on port 0, driven the way users
drive them: headless, master + workers, ``--processes``, the web UI, ``tfsuite locust``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from locust_files import hdr_files, locust_rows, percentile_rows  # type: ignore[import-not-found]
from locust_support import MODEL, Served, free_port, run_locust, start_locust  # type: ignore[import-not-found]

from tfsuite.loadtest.results import load_results

pytestmark = pytest.mark.slow

V1 = f"Predict {MODEL} v1 original"
V2 = f"Predict {MODEL} v2 weight_quant"


def _assert_counts_agree(out: Path, prefix: str = "run") -> dict[str, int]:
    """Every entry's HDR count equals Locust's request count for it; returns the counts."""
    rows = locust_rows(out / f"{prefix}_stats.csv")
    hdrs = hdr_files(out)
    counts = {}
    for name in (V1, V2):
        assert name in rows and name in hdrs, (sorted(rows), sorted(hdrs))
        counts[name] = int(rows[name]["Request Count"])
        assert counts[name] > 0
        assert hdrs[name]["count"] == counts[name]
    return counts


def test_headless_run_gives_one_entry_per_version_with_merged_hdr_counts(
    served: Served, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    done = run_locust(
        "--headless", "-u", "16", "-r", "16", "-t", "20s",
        "--host", served.grpc, "--tfs-model", MODEL, "--tfs-versions", "1,2",
        "--tfs-metrics-url", served.metrics_url, "--csv", str(out / "run"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    counts = _assert_counts_agree(out)
    rows = locust_rows(out / "run_stats.csv")
    assert all(int(rows[n]["Failure Count"]) == 0 for n in (V1, V2))
    # percentiles.csv: 50 .. 99.99 and max from the histograms, at microsecond resolution
    pct = percentile_rows(out)
    for name in (V1, V2):
        values = [float(pct[name][c]) for c in ("50%", "90%", "99%", "99.9%", "99.99%", "100%")]
        assert values == sorted(values) and values[0] > 0
        assert int(pct[name]["Request Count"]) == counts[name]
    # results.json: the suite's contract, one step per version, readable by `tfsuite report`
    results = load_results(out / "results.json")
    assert results.run.tool == "locust" and results.run.complete
    steps = {s.version: s for s in results.steps}
    assert set(steps) == {1, 2}
    assert steps[1].requests == counts[V1] and steps[2].requests == counts[V2]
    assert steps[1].hdr and steps[1].latency_ms.p50 == pytest.approx(
        float(pct[V1]["50%"]), abs=1e-3
    )
    # the server's own view per version, beside the CSVs
    deltas = json.loads((out / "server_deltas.json").read_text())
    by_entry = {d["entry"]: d for d in deltas}
    for name in (V1, V2):
        served_ok = by_entry[name]["request_count_by_status"].get("OK", 0)
        assert 0 <= served_ok - counts[name] <= 16  # requests in flight when users stopped


def test_master_with_two_workers_merges_the_workers_histograms(
    served: Served, tmp_path: Path
) -> None:
    port = free_port()
    out = tmp_path / "out"
    master = start_locust(
        "--headless", "--master", "--master-bind-host", "127.0.0.1",
        "--master-bind-port", str(port), "--expect-workers", "2",
        "-u", "8", "-r", "8", "-t", "8s", "--host", served.grpc,
        "--tfs-model", MODEL, "--tfs-versions", "1,2", "--csv", str(out / "run"),
        log=tmp_path / "master.log",
    )  # fmt: skip
    workers = [
        start_locust(
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            str(port),
            log=tmp_path / f"worker{i}.log",
        )
        for i in range(2)
    ]
    try:
        assert master.wait(timeout=120) == 0, (tmp_path / "master.log").read_text()[-3000:]
        for w in workers:
            assert w.wait(timeout=60) == 0
    finally:
        for p in (master, *workers):
            if p.poll() is None:
                p.kill()
    counts = _assert_counts_agree(out)
    sent = []
    for i in range(2):
        log = (tmp_path / f"worker{i}.log").read_text()
        line = next(x for x in log.splitlines() if "worker sent" in x)
        sent.append(int(line.split("worker sent ")[1].split()[0]))
    assert all(s > 0 for s in sent), sent  # both workers carried load
    assert sum(sent) == sum(counts.values())
    assert sum(h["count"] for h in hdr_files(out).values()) == sum(sent)


def test_processes_run_through_tfsuite_locust_writes_into_out(
    served: Served, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "tfsuite", "locust", "--out", str(out),
         "--headless", "--processes", "2", "-u", "4", "-r", "4", "-t", "6s",
         "--host", served.grpc, "--tfs-model", MODEL, "--tfs-labels", "original,weight_quant",
         "--tfs-weights", "3,1", "--tfs-batch-size", "2", "--tfs-deadline-ms", "5000"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    counts = _assert_counts_agree(out, prefix="locust")
    assert 2.0 < counts[V1] / counts[V2] < 4.5  # --tfs-weights 3,1
    assert (out / "report.html").is_file()
    results = load_results(out / "results.json")
    assert results.run.tool == "locust" and results.run.settings["batch_size"] == 2
    assert {s.label for s in results.steps} == {"original", "weight_quant"}


def test_rest_user_sends_inputs_from_a_directory_per_version(
    served: Served, tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for i in range(3):
        np.save(inputs / f"{i}.npy", np.full((4,), i, np.float32))
    out = tmp_path / "out"
    done = run_locust(
        "--headless", "-u", "2", "-r", "2", "-t", "4s", "--tfs-rest",
        "--host", f"http://{served.rest}", "--tfs-model", MODEL, "--tfs-versions", "1,2",
        "--tfs-inputs", str(inputs), "--csv", str(out / "run"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    counts = _assert_counts_agree(out)
    results = load_results(out / "results.json")
    assert results.run.settings["api"] == "rest"
    assert results.run.settings["inputs"] == str(inputs)
    assert sum(s.requests for s in results.steps) == sum(counts.values())
    assert "TFServingRestUser" in done.stderr


def test_stepped_arrival_rate_says_when_the_target_was_not_reached(
    served: Served, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    done = run_locust(
        "--headless", "--host", served.grpc, "--tfs-model", MODEL, "--tfs-versions", "1",
        "--tfs-rates", "20,50000", "--tfs-rate-per-user", "10", "--tfs-step-time", "3",
        "--csv", str(out / "run"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    steps = load_results(out / "results.json").steps
    assert [(s.mode, s.target) for s in steps] == [("open", 20.0), ("open", 50000.0)]
    low, high = steps
    assert low.achieved_rps == pytest.approx(20, rel=0.35) and not low.client_bound.flag
    assert high.client_bound.flag and "of target rate" in high.client_bound.reasons[0]
    assert "could not keep up" in done.stderr


def test_sequential_shape_runs_one_version_per_stage(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_locust(
        "--headless", "-u", "2", "--host", served.grpc, "--tfs-model", MODEL,
        "--tfs-sequential", "--tfs-step-time", "3", "--tfs-metrics-url", served.metrics_url,
        "--csv", str(out / "run"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    steps = load_results(out / "results.json").steps
    main = {}
    for step in steps:  # a stage may catch a few requests in flight at its start
        if step.requests > main.get(step.version, (0, None))[0]:
            main[step.version] = (step.requests, step)
    first, second = main[1][1], main[2][1]
    assert first.server is not None and second.server is not None
    # the server saw version 2 only in the second stage, and version 1 mostly in the first
    stage_of = {id(s): i for i, s in enumerate(steps)}
    assert stage_of[id(first)] < stage_of[id(second)]
    assert first.server.request_count_by_status.get("OK", 0) >= 0.9 * first.requests


def test_web_ui_shows_the_version_entries_and_the_tfs_options(
    served: Served, tmp_path: Path
) -> None:
    port = free_port()
    proc = start_locust(
        "--web-port", str(port), "--autostart", "-u", "2", "-r", "2",
        "--host", served.grpc, "--tfs-model", MODEL, "--tfs-versions", "1,2",
        log=tmp_path / "ui.log",
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        names: set[str] = set()
        index = ""
        with httpx.Client(timeout=5.0) as http:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not {V1, V2} <= names:
                try:
                    index = http.get(base + "/").text
                    stats = http.get(base + "/stats/requests").json()
                    names = {row["name"] for row in stats["stats"]}
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)  # polling the UI until the rows appear
        assert {V1, V2} <= names, (tmp_path / "ui.log").read_text()[-2000:]
        assert "tfs_model" in index and "tfs_versions" in index  # custom parameters
        assert f"http://127.0.0.1:{port}" in (tmp_path / "ui.log").read_text()  # bound locally
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
