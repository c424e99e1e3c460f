"""The recommendation: a few lines per model, each figure read off the report's numbers.

Per version against its reference (the version its agreement was measured against, else
the model's lowest version): size ratio, output agreement, the p99 change at the highest
load both measured cleanly, and max throughput under the p99 SLO. Then one verdict per
model: the fastest version under the SLO whose outputs agree with the reference on at least
:data:`AGREEMENT_FLOOR` of the inputs; when several are as fast within noise (their 95%
intervals overlap), the smallest of them. Differences whose intervals overlap are called
"within noise"; without intervals (one repeat, too few windows) the line says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tfsuite.loadtest.report.confidence import Interval
from tfsuite.loadtest.report.formatting import (
    fmt_error,
    fmt_load,
    fmt_ms,
    fmt_ratio,
    fmt_rps,
    fmt_share,
    fmt_signed_pct,
    fmt_slo,
)
from tfsuite.loadtest.report.points import LoadPoint
from tfsuite.loadtest.report.summary import ComparisonReport, SloOutcome, VersionSummary

__all__ = ["AGREEMENT_FLOOR", "RecommendationLine", "agreement_share", "recommend"]

#: Share of inputs on which a variant must agree with its reference to be recommended.
AGREEMENT_FLOOR = 0.99

Kind = Literal["verdict", "version", "warning", "note"]


@dataclass(frozen=True)
class RecommendationLine:
    model: str
    kind: Kind
    text: str


def agreement_share(summary: VersionSummary) -> float | None:
    """Top-1 (classifiers) or detection match (detectors) share; 1.0 for a reference."""
    if summary.reference is None:
        return 1.0
    agreement = summary.agreement
    if agreement is None:
        return None
    return agreement.top1 if agreement.top1 is not None else agreement.detection_match


def _noise(a: Interval | None, b: Interval | None) -> str:
    if a is None or b is None:
        return ""
    return " (within noise)" if a.overlaps(b) else ""


def _agreement_text(summary: VersionSummary) -> str:
    agreement = summary.agreement
    if agreement is None:
        return "agreement not measured"
    err = (
        f" (max abs err {fmt_error(agreement.max_abs_error)})"
        if agreement.max_abs_error is not None
        else ""
    )
    if agreement.top1 is not None:
        return f"same top-1 on {fmt_share(agreement.top1)} of {agreement.inputs} inputs{err}"
    if agreement.detection_match is not None:
        return f"matches {fmt_share(agreement.detection_match)} of the reference's detections{err}"
    return f"max abs err {fmt_error(agreement.max_abs_error)} on {agreement.inputs} inputs"


def _common_point(
    summary: VersionSummary, reference: VersionSummary
) -> tuple[LoadPoint, LoadPoint] | None:
    """The highest load both versions measured, preferring closed loop and clean steps."""
    pairs = []
    for point in summary.points:
        other = reference.point_at(point.mode, point.target)
        if other is not None and point.p99 is not None and other.p99 is not None:
            clean = point.trusted and other.trusted
            pairs.append(((clean, point.mode == "closed", point.target), (point, other)))
    if not pairs:
        return None
    return max(pairs, key=lambda item: item[0])[1]


def _score(summary: VersionSummary) -> tuple[float, Interval | None] | None:
    """What the verdict ranks by: max req/s under the SLO, else max clean req/s."""
    if summary.slo is not None:
        if not summary.slo.met or summary.slo.max_rps is None:
            return None
        return summary.slo.max_rps, summary.slo.rps_interval
    best = summary.best_trusted_rps
    return (best.rps, best.rps_interval) if best else None


def _at(slo: SloOutcome) -> str:
    """' (at 8 clients)': where a max-under-SLO figure was reached."""
    if slo.mode is None or slo.max_target is None:
        return ""
    flag = ", unstable or client-bound step" if slo.trusted is False else ""
    return f" (at {fmt_load(slo.mode, slo.max_target)}{flag})"


def _version_line(summary: VersionSummary, reference: VersionSummary) -> str:
    parts = []
    if summary.size_bytes and reference.size_bytes:
        parts.append(f"{fmt_ratio(summary.size_bytes / reference.size_bytes)} the size")
    parts.append(_agreement_text(summary))
    pair = _common_point(summary, reference)
    if pair is not None:
        mine, theirs = pair
        assert mine.p99 is not None and theirs.p99 is not None
        delta = fmt_signed_pct(mine.p99 / theirs.p99 - 1)
        flag = "" if mine.trusted and theirs.trusted else ", unstable or client-bound step"
        parts.append(
            f"p99 {delta} at {fmt_load(mine.mode, mine.target)} "
            f"({fmt_ms(mine.p99)} vs {fmt_ms(theirs.p99)} ms"
            f"{flag}){_noise(mine.p99_interval, theirs.p99_interval)}"
        )
    ref_name = reference.name
    if summary.slo is not None:
        slo = fmt_slo(summary.slo.slo_ms)
        ref_slo = reference.slo
        if not summary.slo.met:
            parts.append(f"never met {slo} at the loads measured")
        elif ref_slo is None or not ref_slo.met or not ref_slo.max_rps:
            parts.append(
                f"max {fmt_rps(summary.slo.max_rps)} req/s under {slo}{_at(summary.slo)} "
                f"({ref_name} never met it)"
            )
        else:
            assert summary.slo.max_rps is not None
            gain = fmt_signed_pct(summary.slo.max_rps / ref_slo.max_rps - 1)
            noise = _noise(summary.slo.rps_interval, ref_slo.rps_interval)
            parts.append(
                f"max {fmt_rps(summary.slo.max_rps)} req/s under {slo}{_at(summary.slo)} vs "
                f"{fmt_rps(ref_slo.max_rps)} for {ref_name}{_at(ref_slo)} ({gain}){noise}"
            )
    else:
        mine_best, ref_best = summary.best_trusted_rps, reference.best_trusted_rps
        if mine_best and ref_best:
            gain = fmt_signed_pct(mine_best.rps / ref_best.rps - 1)
            parts.append(
                f"max {fmt_rps(mine_best.rps)} req/s (clean steps, no SLO set) vs "
                f"{fmt_rps(ref_best.rps)} for {ref_name} ({gain})"
                f"{_noise(mine_best.rps_interval, ref_best.rps_interval)}"
            )
    return f"{summary.name}: " + ", ".join(parts)


def _verdict(model: str, group: list[VersionSummary]) -> list[RecommendationLine]:
    lines: list[RecommendationLine] = []
    reference = next((v for v in group if v.reference is None), group[0])
    candidates = []
    for summary in group:
        share = agreement_share(summary)
        if share is None:
            lines.append(
                RecommendationLine(
                    model, "warning", f"{summary.name} not recommended: agreement not measured"
                )
            )
        elif share < AGREEMENT_FLOOR:
            lines.append(
                RecommendationLine(
                    model,
                    "warning",
                    f"{summary.name} not recommended: agreement {fmt_share(share)} "
                    f"< {fmt_share(AGREEMENT_FLOOR)}",
                )
            )
        else:
            candidates.append(summary)
    slo_ms = reference.slo.slo_ms if reference.slo else None
    scored = [(s, score) for s in candidates if (score := _score(s)) is not None]
    if slo_ms is not None and not any(v.slo and v.slo.met for v in group):
        lowest = min(
            ((v, p) for v in group for p in v.points if p.p99 is not None),
            key=lambda vp: vp[1].p99 or 0.0,
            default=None,
        )
        best_seen = (
            f" (lowest p99: {lowest[0].name} {fmt_ms(lowest[1].p99)} ms at "
            f"{fmt_load(lowest[1].mode, lowest[1].target)})"
            if lowest
            else ""
        )
        lines.insert(
            0,
            RecommendationLine(
                model,
                "verdict",
                f"No version of {model} meets {fmt_slo(slo_ms)} at any measured load"
                f"{best_seen}: none can be recommended under this SLO.",
            ),
        )
        return lines
    if not scored:
        lines.insert(
            0,
            RecommendationLine(
                model,
                "verdict",
                f"No version of {model} can be recommended: none has agreeing outputs and a "
                "clean (stable, not client-bound) step"
                + (f" under {fmt_slo(slo_ms)}" if slo_ms is not None else ""),
            ),
        )
        return lines
    fastest, (top, top_interval) = max(scored, key=lambda item: item[1][0])
    tied = [
        s
        for s, (_, interval) in scored
        if s is fastest
        or (interval is not None and top_interval is not None and interval.overlaps(top_interval))
    ]
    chosen = min(tied, key=lambda s: (s.size_bytes or float("inf"), s.key.version))
    what = f"req/s under {fmt_slo(slo_ms)}" if slo_ms is not None else "req/s on clean steps"
    ref_score = _score(reference)
    if chosen is fastest:
        reason = f"the most {what} ({fmt_rps(top)}"
        if chosen is not reference and ref_score is not None:
            reason += f" vs {fmt_rps(ref_score[0])} for {reference.name}"
        reason += ")"
        others = [s.name for s in tied if s is not chosen]
        if others:
            reason += f"; {', '.join(others)} within noise of it, and not smaller"
    else:
        chosen_score = _score(chosen)
        assert chosen_score is not None
        reason = (
            f"as fast as {fastest.name} within noise ({fmt_rps(chosen_score[0])} vs "
            f"{fmt_rps(top)} {what})"
        )
        if chosen.size_bytes and fastest.size_bytes:
            reason += f" at {fmt_ratio(chosen.size_bytes / fastest.size_bytes)} its size"
    if (
        chosen is not reference
        and fastest is not reference
        and chosen.size_bytes
        and reference.size_bytes
    ):
        reason += (
            f"; {fmt_ratio(chosen.size_bytes / reference.size_bytes)} the size of {reference.name}"
        )
    if len(scored) == 1 and len(group) > 1:
        reason += "; the only version that qualifies"
    if top_interval is None:
        reason += "; noise unknown (no confidence interval at that load)"
    lines.insert(
        0, RecommendationLine(model, "verdict", f"Serve {chosen.name} for {model}: {reason}.")
    )
    return lines


def _noise_note(report: ComparisonReport) -> RecommendationLine | None:
    sources = {
        interval.source
        for v in report.versions.values()
        for p in v.points
        for interval in (p.rps_interval, p.p99_interval)
        if interval is not None
    }
    if "repeats" in sources:
        repeats = max(p.repeats for v in report.versions.values() for p in v.points)
        text = f"Noise: 95% intervals across up to {repeats} repeats of each step."
    elif "windows" in sources:
        text = (
            "Noise: 95% intervals from each step's measurement windows (no --repeats); "
            "repeat the run for sturdier calls."
        )
    else:
        text = "Noise: no confidence intervals (one repeat, too few windows): small differences may be noise."
    return RecommendationLine("", "note", text)


def recommend(report: ComparisonReport) -> list[RecommendationLine]:
    """The recommendation lines, verdicts first within each model."""
    lines: list[RecommendationLine] = []
    for run in report.incomplete:
        reason = run.results.run.incomplete_reason or "no reason recorded"
        lines.append(
            RecommendationLine("", "warning", f"Provisional: {run.title} is incomplete ({reason}).")
        )
    for model in report.models:
        for run in report.runs:
            group = [v for v in report.of_model(model) if v.run is run]
            if not group:
                continue
            reference = next((v for v in group if v.reference is None), group[0])
            lines += _verdict(model, group)
            for summary in group:
                if summary is not reference:
                    lines.append(
                        RecommendationLine(model, "version", _version_line(summary, reference))
                    )
            for summary in group:
                if summary.slo is not None and summary.slo.warning:
                    lines.append(
                        RecommendationLine(
                            model, "warning", f"{summary.name}: {summary.slo.warning}"
                        )
                    )
        if report.merged:
            lines += _across_runs(model, report.of_model(model))
    note = _noise_note(report)
    if note is not None:
        lines.append(note)
    return lines


def _across_runs(model: str, group: list[VersionSummary]) -> list[RecommendationLine]:
    scored = [(s, score) for s in group if (score := _score(s)) is not None]
    if len({s.key.run for s, _ in scored}) < 2:
        return []
    ranked = sorted(scored, key=lambda item: -item[1][0])
    (best, (top, _)), rest = ranked[0], ranked[1:]
    others = ", ".join(
        f"{s.name} {fmt_rps(v)} ({fmt_signed_pct(v / top - 1)})" for s, (v, _) in rest
    )
    return [
        RecommendationLine(
            model, "note", f"Across runs, {model}: {best.name} {fmt_rps(top)} req/s; {others}."
        )
    ]
