"""``tfsuite demo`` end to end: example models -> export -> configs -> embedded server ->
served comparison, on a few images (the same code path ``make demo`` runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfsuite.cli import main


@pytest.mark.slow
def test_demo_runs_end_to_end_and_writes_the_comparison(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "demo",
        "--workdir",
        str(tmp_path),
        "--images",
        "3",
        "--concurrency",
        "4",
        "--load-requests",
        "8",
        "--no-bench",
    ]
    main(args)  # returns normally on success (errors exit non-zero)
    out = capsys.readouterr().out
    assert "ssd_mobilenet_v2_tiny (detector, frozen_graph)" in out  # the export tables
    assert "mobilenet_v2 (classifier, saved_model)" in out
    assert "under load (4 in flight" in out
    # ... and it ends with the two export tables (what variants.json records).
    tail = out[out.rindex("summary: the model base paths") :]
    assert "ssd_mobilenet_v2_tiny (detector, frozen_graph)" in tail
    assert "mobilenet_v2 (classifier, saved_model)" in tail

    versions = json.loads((tmp_path / "results.json").read_text())["versions"]
    by_key = {(v["model"], v["variant"]): v for v in versions}
    assert len(versions) == 8  # 2 models x (original, weight_quant, trt_fp16, trt_int8)
    for model in ("ssd_mobilenet_v2_tiny", "mobilenet_v2"):
        original, quant = by_key[(model, "original")], by_key[(model, "weight_quant")]
        assert original["status"] == quant["status"] == "ok"
        assert original["agreement"] == 1.0 and original["max_abs_error"] == 0.0
        assert 0.5 <= quant["agreement"] <= 1.0
        assert quant["size_bytes"] < 0.35 * original["size_bytes"]
        for served in (original, quant):
            assert served["requests"] == 3 and len(served["latencies_ms"]) == 3
            assert served["load_images_per_s"] > 0
            assert served["mean_batch_size"] >= 1.0  # read back from the server's metrics
        for trt in ("trt_fp16", "trt_int8"):
            assert by_key[(model, trt)]["status"] == "skipped"
            assert "TensorRT" in by_key[(model, trt)]["reason"]
    report = (tmp_path / "report.md").read_text()
    assert "| mobilenet_v2 | 2 | weight_quant | ok |" in report

    # Re-running reuses what is up to date (same sources, same versions).
    main(args)
    assert "version 1 (original): up to date" in capsys.readouterr().out
