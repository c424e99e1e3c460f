"""Acceptance: ``tfsuite compare --base-path <example detector> --versions 1,2 --concurrency 1,8
--rate 20,40 --out DIR`` (short steps) writes results.json as documented, from a generator
process that never imports TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tfsuite.loadtest.results import load_results

SHORT = ["--duration", "2s", "--window", "0.5s", "--warmup", "0.5s", "--max-duration", "4s"]
DETECTOR = "ssd_mobilenet_v2_tiny"


def _compare(args: list[str]) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\n"
        "from tfsuite.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "finally:\n"
        "    print('tensorflow imported:', 'tensorflow' in sys.modules, file=sys.stderr)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.mark.slow
def test_compare_detector_versions_closed_and_open_loop(
    detector_base: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    done = _compare(
        [
            "compare",
            "--base-path",
            str(detector_base),
            "--model",
            DETECTOR,
            "--versions",
            "1,2",
            "--concurrency",
            "1,8",
            "--rate",
            "20,40",
            *SHORT,
            "--out",
            str(out),
        ]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "tensorflow imported: False" in done.stderr
    results = load_results(out / "results.json")
    run = results.run
    assert run.complete and run.tool == "compare" and run.server.kind == "embedded"
    assert run.model == DETECTOR
    assert run.machine.cores >= 1 and run.started and run.ended and "compare" in run.command
    assert run.server.metrics_url and run.server.batching is False
    assert [(v.version, v.variant) for v in results.versions] == [
        (1, "original"),
        (2, "weight_quant"),
    ]
    v1, v2 = results.versions
    assert v1.agreement is None
    assert v2.agreement is not None and v2.agreement.reference_version == 1
    assert v2.agreement.detection_match is not None and 0.0 <= v2.agreement.detection_match <= 1.0
    assert v2.agreement.inputs > 0 and v2.agreement.score_drift is not None
    for v in (v1, v2):
        assert v.size_bytes and v.load_seconds is not None and v.load_seconds > 0
        assert v.first_request_ms is not None and v.rss_delta_bytes is not None
    assert [(s.version, s.mode, s.target) for s in results.steps] == [
        (v, m, t)
        for v in (1, 2)
        for m, t in (("closed", 1), ("closed", 8), ("open", 20), ("open", 40))
    ]
    for s in results.steps:
        lat = s.latency_ms
        assert s.achieved_rps > 0 and s.requests > 0
        assert None not in (lat.p50, lat.p90, lat.p99, lat.p999, lat.max, lat.mean)
        assert s.errors_by_code == {} and s.version_mismatches == 0
        assert isinstance(s.stable, bool) and len(s.windows) >= 3
        assert isinstance(s.client_bound.flag, bool) and s.generator_cpu is not None
        assert s.server is not None and s.server.per_version
        assert sum(s.server.request_count_by_status.values()) > 0
        assert s.server.processed_batch_size is not None  # batching off: a zero delta
        assert s.hdr
        if s.mode == "open":
            assert lat.uncorrected is not None and s.late_share is not None
            assert s.dispatch_lag_ms is not None and s.arrival == "constant"
            assert s.achieved_rps == pytest.approx(s.target, rel=0.25)
    assert (out / "results.csv").read_text().count("\n") == 1 + len(results.steps)


@pytest.mark.slow
def test_compare_with_batching_parameters_records_the_batches_formed(
    detector_base: Path, tmp_path: Path
) -> None:
    from tfsuite.serving_configs.batching import BatchingOptions, write_batching_parameters

    params = write_batching_parameters(
        tmp_path / "batching_parameters.txt",
        BatchingOptions(max_batch_size=8, batch_timeout_micros=5000, max_enqueued_batches=100),
    )
    out = tmp_path / "out"
    done = _compare(
        [
            "compare",
            "--base-path",
            str(detector_base),
            "--batching-parameters",
            str(params),
            "--model",
            DETECTOR,
            "--labels",
            "weight_quant",
            "--concurrency",
            "8",
            *SHORT,
            "--out",
            str(out),
        ]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = load_results(out / "results.json")
    assert results.run.server.batching is True
    (step,) = results.steps
    assert step.version == 2 and step.label == "weight_quant"
    batches = step.server.processed_batch_size if step.server else None
    assert batches is not None and batches.count > 0
    mean_batch = batches.sum / batches.count
    assert mean_batch > 1.0  # 8 in flight: the server merged requests
    assert step.server is not None and step.server.queuing_latency_us is not None
