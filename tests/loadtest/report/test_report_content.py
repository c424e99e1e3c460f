"""What the charts and tables contain, and what a sparse run (Locust: no server metrics, no
version facts, no SLO) renders as."""

from __future__ import annotations

from pathlib import Path

from report_runs import CLASSIFIER, build_results

from tfsuite.loadtest.report import ComparisonReport, load_runs, write_report
from tfsuite.loadtest.report.charts import bucket_counts, model_charts
from tfsuite.loadtest.report.svg import THEME
from tfsuite.loadtest.report.tables import flag_reasons
from tfsuite.loadtest.results import HistogramDelta


def test_prometheus_buckets_become_per_bucket_counts() -> None:
    delta = HistogramDelta(count=10, sum=40, buckets={"1": 2, "2": 2, "4": 7, "8": 10, "+Inf": 10})
    assert bucket_counts(delta) == [
        (1.0, 2.0),
        (2.0, 0.0),
        (4.0, 5.0),
        (8.0, 3.0),
        (float("inf"), 0.0),
    ]


def test_charts_are_themed_svg_with_every_version(tmp_path: Path) -> None:
    path = build_results().write(tmp_path / "results.json")
    report = ComparisonReport.build(load_runs([path]))
    charts = model_charts(report, CLASSIFIER)
    for chart in charts:
        assert chart.svg is not None and chart.svg.startswith("<svg "), chart.kind
        assert "var(--fg)" in chart.svg
        assert not any(sentinel in chart.svg for sentinel in THEME), chart.kind  # all replaced
    legend = next(c for c in charts if c.kind == "p99-vs-throughput").svg
    assert legend is not None
    for name in ("v1 original", "v2 weight_quant", "v3 fp16_weights", "SLO p99 ≤ 40 ms"):
        assert f">{name}</text>" in legend
    # The max-req/s-under-SLO point of each version is annotated with the run's own figure.
    for slo in (s for s in build_results().slo if s.model == CLASSIFIER):
        assert f"{slo.max_rps_under_slo:.0f} req/s" in legend


def test_flagged_steps_say_why() -> None:
    results = build_results()
    noisy = next(s for s in results.steps if not s.stable)
    (reason,) = [r for r in flag_reasons(noisy) if r.startswith("unstable")]
    assert "window req/s" in reason and "max/min" in reason
    bound = results.steps[0].model_copy(deep=True)
    bound.client_bound.flag = True
    bound.client_bound.reasons = ["generator CPU 97% of a core"]
    assert "client-bound: generator CPU 97% of a core" in flag_reasons(bound)


def test_a_sparse_locust_run_renders_and_says_what_is_missing(tmp_path: Path) -> None:
    results = build_results(slo_ms=None)
    results.run.tool = "locust"
    results.versions = []  # Locust knows no sizes, load times or agreement
    results.slo = []
    results.steps = [s for s in results.steps if s.mode == "closed" and s.model == CLASSIFIER]
    for step in results.steps:
        step.server = None  # no metrics endpoint scraped
    path = results.write(tmp_path / "locust.json")
    files = write_report(load_runs([path]), tmp_path / "out")
    html = files.html.read_text()
    for kind, why in (
        ("batch-sizes", "no server batching metrics"),
        ("size", "no sizes recorded"),
        ("open-loop-correction", "no open-loop steps"),
        ("accuracy-vs-speed", "no version has both an agreement figure"),
    ):
        assert f'data-chart="{kind}" data-missing="true"' in html
        assert why in html
    assert 'data-chart="latency-vs-load">' in html  # still drawn from the steps
    verdicts = [line.text for line in files.recommendation if line.kind == "verdict"]
    # No agreement measured: the report refuses to recommend a variant on speed alone.
    assert verdicts[0].startswith(f"Serve v1 original for {CLASSIFIER}")
    texts = [line.text for line in files.recommendation]
    assert "v2 weight_quant not recommended: agreement not measured" in texts
    assert "v3 fp16_weights not recommended: agreement not measured" in texts
