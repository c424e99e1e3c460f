"""``tfsuite demo`` end to end: example models -> export -> configs -> embedded server (own
process, batching) -> detect -> compare sweep (closed loop + one open-loop rate, SLO) ->
results.json -> report.html, on a few images (the same code path ``make demo`` runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfsuite.cli import main
from tfsuite.loadtest.report import ComparisonReport, load_runs, recommend
from tfsuite.loadtest.results import load_results

MODELS = ("ssd_mobilenet_v2_tiny", "mobilenet_v2")


@pytest.mark.slow
def test_demo_runs_the_whole_job_and_ends_with_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "demo",
        "--workdir",
        str(tmp_path),
        "--images",
        "3",
        "--concurrency",
        "1,4",
        "--step-duration",
        "1s",
        "--no-bench",
    ]
    main(args)  # returns normally on success (errors exit non-zero)
    out = capsys.readouterr().out
    for model in MODELS:
        assert f"{model} (" in out  # the export tables
    assert "5/8  detect on 3 sample images" in out
    detections = json.loads((tmp_path / "detect" / "detections.json").read_text())
    assert isinstance(detections, list)

    results = load_results(tmp_path / "results.json")
    assert results.run.complete and results.run.server.kind == "embedded"
    assert results.run.server.batching is True and results.run.slo_p99_ms == 100.0
    for model in MODELS:
        versions = {v.version: v for v in results.versions if v.model == model}
        assert set(versions) == {1, 2}  # the TF-TRT versions are skipped, not served
        assert versions[2].variant == "weight_quant" and versions[2].size_bytes
        assert versions[1].load_seconds is not None  # from the server's own load log
        steps = [s for s in results.steps if s.model == model]
        assert {(s.mode, s.target) for s in steps if s.mode == "closed"} == {
            ("closed", 1.0),
            ("closed", 4.0),
        }
        assert len({s.target for s in steps if s.mode == "open"}) == 1  # one open-loop rate
        assert any(s.server and s.server.processed_batch_size for s in steps)
        assert {s.version for s in results.slo if s.model == model} == {1, 2}

    # It ends with the recommendation, derived from results.json, and the report's path.
    tail = out[out.rindex("recommendation") :].splitlines()[1:]
    expected = recommend(ComparisonReport.build(load_runs([tmp_path / "results.json"])))
    printed = [line[2:] for line in tail[:-1]]
    assert printed == [line.text for line in expected]
    assert tail[-1] == f"report: {tmp_path / 'report.html'}"
    html = (tmp_path / "report.html").read_text()
    assert 'data-chart="batch-sizes">' in html and "<h3>Every step</h3>" in html
    assert (tmp_path / "report.md").exists()
