"""``tfsuite compare``: bad input and faults (one line, nothing lost), sweeps, SLO search."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tfsuite.cli import main
from tfsuite.loadtest.online.profiler import StepSettings
from tfsuite.loadtest.online.sweep import CompareOptions, run_compare
from tfsuite.loadtest.results import load_results
from tfsuite.loadtest.scripted_server import LatencySchedule, ScriptedServer, serve_in_thread, spawn

FAST = ["--duration", "1s", "--window", "0.25s", "--warmup", "0.2s", "--max-duration", "2s"]
QUICK = StepSettings(duration_s=1.0, max_duration_s=2.0, warmup_s=0.2, window_s=0.25)


def _exit_and_stderr(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    return int(info.value.code or 0), capsys.readouterr().err


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait on a condition (a file appearing, a process exiting), not on the clock."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _steps_written(out: Path, at_least: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return len(json.loads((out / "results.json").read_text())["steps"]) >= at_least
        except (OSError, ValueError, KeyError):
            return False

    return check


@pytest.fixture
def two_versions():
    server = ScriptedServer(
        LatencySchedule(base_s=0.002), versions={1: "original", 2: "weight_quant"}
    )
    with serve_in_thread(server) as running:
        yield running


def test_unknown_version_fails_before_any_load_listing_the_available(
    two_versions: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["compare", "--server", two_versions.address, "--model", "scripted"]
    code, err = _exit_and_stderr(
        [*args, "--versions", "1,7", "--concurrency", "1", "--out", str(tmp_path)], capsys
    )
    assert code == 2
    assert err.strip().splitlines() == [
        "error: version 7 of scripted is not available on the server; available versions: 1, 2"
    ]
    code, err = _exit_and_stderr(
        [*args, "--labels", "original,int8", "--rate", "5", "--out", str(tmp_path)], capsys
    )
    assert code == 2 and err.count("\n") == 1
    assert "label 'int8' of scripted is not on the server; available versions: 1, 2" in err
    assert two_versions.served == 0  # not one Predict was sent
    assert not (tmp_path / "results.json").exists()


def test_unreachable_server_is_one_line_within_the_connect_timeout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    code, err = _exit_and_stderr(
        [
            "compare",
            "--server",
            f"127.0.0.1:{port}",
            "--model",
            "m",
            "--concurrency",
            "1",
            "--connect-timeout",
            "1s",
            "--out",
            str(tmp_path / "out"),
        ],
        capsys,
    )
    assert time.monotonic() - start < 1.0 + 2.0
    assert code != 0 and err.count("\n") == 1 and err.startswith("error: ")
    assert f"127.0.0.1:{port}" in err and "Traceback" not in err


def test_out_not_writable_fails_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    # The server address is unreachable on purpose: --out must be refused before connecting.
    code, err = _exit_and_stderr(
        [
            "compare",
            "--server",
            "127.0.0.1:1",
            "--model",
            "m",
            "--concurrency",
            "1",
            "--out",
            str(blocker / "out"),
        ],
        capsys,
    )
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: --out {blocker / 'out'}: not writable")


def test_bad_option_values_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["compare", "--server", "127.0.0.1:1", "--model", "m", "--out", str(tmp_path)]
    for extra, expected in (
        (["--concurrency", "1", "--duration", "soon"], "--duration takes a positive duration"),
        (["--concurrency", "1", "--stability", "200%"], "--stability takes a share"),
        ([], "give --concurrency"),
        (["--concurrency", "1", "--versions", "1", "--labels", "a"], "not both"),
        (["--concurrency", "1", "--inputs", str(tmp_path / "nope")], "--inputs"),
    ):
        code, err = _exit_and_stderr(base + extra, capsys)
        assert code == 2 and err.count("\n") == 1 and expected in err, err


def test_sweep_by_label_interleaved_repeats_give_confidence_intervals(
    two_versions: ScriptedServer, tmp_path: Path
) -> None:
    options = CompareOptions(
        model="scripted",
        out=tmp_path,
        server=two_versions.address,
        labels=["original", "weight_quant"],
        concurrency=[2],
        rates=[40],
        interleave=True,
        repeats=2,
        settings=QUICK,
        seed=3,
    )
    results = run_compare(options)
    assert results.run.complete and results.run.incomplete_reason == ""
    order = [(s.version, s.mode, s.repeat) for s in results.steps]
    assert sorted(order) == sorted(
        (v, m, r) for v in (1, 2) for m in ("closed", "open") for r in (0, 1)
    )
    assert [r for *_, r in order] == [0, 0, 0, 0, 1, 1, 1, 1]  # rounds
    assert order[:4] != [(1, "closed", 0), (1, "open", 0), (2, "closed", 0), (2, "open", 0)]
    assert {s.label for s in results.steps} == {"original", "weight_quant"}
    assert sum(s.version_mismatches for s in results.steps) == 0
    figures = {(ci.version, ci.mode, ci.figure) for ci in results.intervals}
    assert (1, "closed", "achieved_rps") in figures and (2, "open", "p99_ms") in figures
    for ci in results.intervals:
        assert ci.low <= ci.mean <= ci.high and ci.repeats == 2
    v2 = next(v for v in results.versions if v.version == 2)
    assert v2.agreement is not None and v2.agreement.reference_version == 1
    assert v2.agreement.max_abs_error == 0.0  # the scripted server answers zeros
    assert v2.first_request_ms is not None and v2.first_request_ms > 0
    # results.csv: one row per step, same figures
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert len(rows) == len(results.steps)
    assert float(rows[0]["achieved_rps"]) == pytest.approx(results.steps[0].achieved_rps, abs=1e-3)
    assert load_results(tmp_path / "results.json").steps[0].hdr == results.steps[0].hdr


def test_slo_search_finds_the_highest_concurrency_under_the_p99(tmp_path: Path) -> None:
    # two workers of 20 ms each: latency grows with concurrency c as about 20 ms * c / 2,
    # so p99 <= 400 ms holds up to c = 40 (less on a busy machine; at c = 48 the median
    # alone is 480 ms, so never more)
    with spawn(["--base-ms", "20", "--workers", "2"]) as (_, address):
        options = CompareOptions(
            model="scripted",
            out=tmp_path,
            server=address,
            concurrency=[1, 2],
            slo_p99_ms=400.0,
            settings=StepSettings(duration_s=1.5, max_duration_s=1.5, warmup_s=0.3, window_s=0.5),
        )
        results = run_compare(options)
    (slo,) = results.slo
    assert slo.mode == "closed" and slo.max_target is not None, slo.probes
    assert 4 <= slo.max_target < 48, slo.probes
    probes = {p["target"]: p for p in slo.probes}
    assert probes[slo.max_target]["p99_ms"] <= 400.0
    above = [p for t, p in probes.items() if t > slo.max_target]
    assert above and min(above, key=lambda p: p["target"])["p99_ms"] > 400.0
    assert slo.max_rps_under_slo == pytest.approx(probes[slo.max_target]["achieved_rps"])


def _compare_process(address: str, out: Path, extra: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tfsuite",
            "compare",
            "--server",
            address,
            "--model",
            "scripted",
            *FAST,
            *extra,
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_server_killed_mid_run_records_errors_skips_the_rest_incomplete(tmp_path: Path) -> None:
    with spawn(["--base-ms", "2"]) as (server, address):
        proc = _compare_process(address, tmp_path, ["--concurrency", "1,2,4,8"])
        _wait_for(_steps_written(tmp_path, 1), 120, "the first step in results.json")
        server.kill()
        server.wait()
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    results = load_results(tmp_path / "results.json")
    assert not results.run.complete and "every request failed" in results.run.incomplete_reason
    failed = next(s for s in results.steps if "UNAVAILABLE" in s.errors_by_code)
    assert failed.errors_by_code["UNAVAILABLE"] > 0 and not failed.skipped
    later = results.steps[results.steps.index(failed) + 1 :]
    assert later and all(s.skipped.startswith("an earlier step failed") for s in later)
    assert results.steps[0].errors_by_code == {} and results.steps[0].requests > 0
    assert "remaining steps are skipped" in err


def test_ctrl_c_writes_the_finished_steps_marked_incomplete(tmp_path: Path) -> None:
    with spawn(["--base-ms", "2"]) as (_, address):
        proc = _compare_process(address, tmp_path, ["--concurrency", "1,2,4,8,16"])
        _wait_for(_steps_written(tmp_path, 1), 120, "the first step in results.json")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "interrupted"
    results = load_results(tmp_path / "results.json")
    assert not results.run.complete and "interrupted" in results.run.incomplete_reason
    assert 1 <= len(results.steps) < 5 and all(not s.skipped for s in results.steps)
    assert results.run.ended is not None
    assert len(list(csv.DictReader((tmp_path / "results.csv").open()))) == len(results.steps)
