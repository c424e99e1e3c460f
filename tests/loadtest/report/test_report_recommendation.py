"""The recommendation is derived from the numbers in results.json, never hard-coded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from report_runs import CLASSIFIER, DETECTOR, build_results

from tfsuite.loadtest.report import ComparisonReport, load_runs, recommend
from tfsuite.loadtest.report.formatting import fmt_ratio, fmt_rps, fmt_signed_pct
from tfsuite.loadtest.results import Results


def _lines(results: Results, tmp_path: Path) -> list[str]:
    path = results.write(tmp_path / "results.json")
    return [line.text for line in recommend(ComparisonReport.build(load_runs([path])))]


def _slo(results: Results, model: str, version: int) -> float:
    found = next(s for s in results.slo if s.model == model and s.version == version)
    assert found.max_rps_under_slo is not None
    return found.max_rps_under_slo


def _slo_target(results: Results, model: str, version: int) -> float:
    found = next(s for s in results.slo if s.model == model and s.version == version)
    assert found.max_target is not None
    return found.max_target


def _size(results: Results, model: str, version: int) -> int:
    info = next(v for v in results.versions if v.model == model and v.version == version)
    assert info.size_bytes is not None
    return info.size_bytes


def test_version_lines_carry_the_runs_own_ratios(tmp_path: Path) -> None:
    results = build_results(seed=3)
    lines = _lines(results, tmp_path)
    v2 = next(line for line in lines if line.startswith("v2 weight_quant:") and "top-1" in line)
    ratio = _size(results, CLASSIFIER, 2) / _size(results, CLASSIFIER, 1)
    assert v2.startswith(f"v2 weight_quant: {fmt_ratio(ratio)} the size, same top-1 on 100% of 64")
    mine, ref = _slo(results, CLASSIFIER, 2), _slo(results, CLASSIFIER, 1)
    at2, at1 = _slo_target(results, CLASSIFIER, 2), _slo_target(results, CLASSIFIER, 1)
    assert (
        f"max {fmt_rps(mine)} req/s under p99 ≤ 40 ms (at {at2:g} clients) vs {fmt_rps(ref)} "
        f"for v1 original (at {at1:g} clients) ({fmt_signed_pct(mine / ref - 1)})"
    ) in v2
    assert "p99 " in v2 and " at 16 clients (" in v2  # the highest load both measured cleanly


def test_verdict_picks_the_fastest_agreeing_version_and_names_the_excluded(
    tmp_path: Path,
) -> None:
    results = build_results(seed=3)
    lines = _lines(results, tmp_path)
    # v3 is the fastest under the SLO but agrees on 97% of inputs only: not recommended.
    assert (
        _slo(results, CLASSIFIER, 3) > _slo(results, CLASSIFIER, 2) > _slo(results, CLASSIFIER, 1)
    )
    assert "v3 fp16_weights not recommended: agreement 97.0% < 99.0%" in lines
    verdict = next(line for line in lines if line.startswith("Serve ") and CLASSIFIER in line)
    assert verdict.startswith(f"Serve v2 weight_quant for {CLASSIFIER}: the most req/s")


def test_within_noise_is_called_from_overlapping_repeat_intervals(tmp_path: Path) -> None:
    # The detector's two versions have nearly the same capacity; with very noisy repeats
    # their intervals overlap, and the line must say so (and the verdict prefers the smaller).
    noisy = build_results(seed=5, repeats=3, jitter=0.15)
    lines = _lines(noisy, tmp_path / "noisy")
    det = next(
        line for line in lines if line.startswith("v2 weight_quant:") and "detections" in line
    )
    assert "(within noise)" in det
    assert "Noise: 95% intervals across up to 3 repeats" in lines[-1]
    # Clean repeats of clearly different versions: v3 vs v1 of the classifier (+40%) is real.
    clean = build_results(seed=5, repeats=3, jitter=0.005)
    lines = _lines(clean, tmp_path / "clean")
    v3 = next(line for line in lines if line.startswith("v3 fp16_weights:"))
    assert "(+" in v3 and v3.endswith(")") and not v3.endswith("(within noise)")


def test_no_version_meets_the_slo(tmp_path: Path) -> None:
    lines = _lines(build_results(slo_ms=1.0), tmp_path)
    for model in (CLASSIFIER, DETECTOR):
        verdict = next(line for line in lines if line.startswith(f"No version of {model}"))
        assert "meets p99 ≤ 1 ms at any measured load (lowest p99: " in verdict
        assert "none can be recommended under this SLO" in verdict
    assert not any(line.startswith("Serve ") for line in lines)


def test_without_an_slo_it_ranks_by_clean_throughput(tmp_path: Path) -> None:
    lines = _lines(build_results(slo_ms=None), tmp_path)
    verdict = next(line for line in lines if line.startswith("Serve ") and CLASSIFIER in line)
    assert "req/s on clean steps" in verdict
    assert any("no SLO set" in line for line in lines)


def test_an_incomplete_run_makes_the_recommendation_provisional(
    write_run: Callable[..., Path],
) -> None:
    path = write_run(complete=False)
    lines = recommend(ComparisonReport.build(load_runs([path])))
    assert lines[0].kind == "warning"
    assert lines[0].text.startswith("Provisional: compare on ci-runner")
    assert "interrupted (Ctrl-C)" in lines[0].text
