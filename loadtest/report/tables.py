"""The report's tables as plain rows of formatted cells: one definition, two renderers
(HTML and Markdown print exactly the same figures)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tfsuite.loadtest.report.formatting import (
    MISSING,
    fmt_bytes,
    fmt_error,
    fmt_ms,
    fmt_num,
    fmt_ratio,
    fmt_rps,
    fmt_share,
    fmt_slo,
    fmt_target,
)
from tfsuite.loadtest.report.runs import Run
from tfsuite.loadtest.report.summary import ComparisonReport
from tfsuite.loadtest.results import HistogramDelta, Step

__all__ = ["Table", "flag_reasons", "report_tables", "versions_table"]


@dataclass
class Table:
    id: str
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""
    text_columns: int = 1
    """The first ``text_columns`` columns are left-aligned text; the rest are figures."""


def _mean(delta: HistogramDelta | None, scale: float = 1.0) -> str:
    if delta is None or delta.count <= 0:
        return MISSING
    return fmt_num(delta.sum / delta.count / scale, 3)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _names(report: ComparisonReport) -> dict[tuple[int, str, int], str]:
    """(id(run), model, version) -> series name, for steps."""
    return {(id(v.run), v.key.model, v.key.version): v.name for v in report.versions.values()}


def _step_name(names: dict[tuple[int, str, int], str], run: Run, step: Step) -> str:
    return names.get((id(run), step.model, step.version), f"v{step.version}")


def versions_table(report: ComparisonReport) -> Table:
    table = Table(
        "versions",
        "Versions",
        [
            "model",
            "version",
            "variant",
            "size",
            "vs reference",
            "load s",
            "first request ms",
            "RSS growth",
        ],
        text_columns=3,
    )
    for v in report.versions.values():
        ref = report.versions.get(v.reference) if v.reference else None
        ratio = (
            fmt_ratio(v.size_bytes / ref.size_bytes)
            if ref is not None and v.size_bytes and ref.size_bytes
            else ("reference" if v.reference is None else MISSING)
        )
        info = v.info
        table.rows.append(
            [
                v.key.model,
                v.name,
                (info.variant or info.label or MISSING) if info else MISSING,
                fmt_bytes(v.size_bytes),
                ratio,
                fmt_num(info.load_seconds) if info else MISSING,
                fmt_ms(info.first_request_ms) if info else MISSING,
                fmt_bytes(info.rss_delta_bytes) if info else MISSING,
            ]
        )
    return table


def slo_table(report: ComparisonReport) -> Table | None:
    shown = [v for v in report.versions.values() if v.slo is not None]
    if not shown:
        return None
    table = Table(
        "slo",
        "Which versions meet the SLO",
        [
            "model",
            "version",
            "SLO",
            "meets it",
            "mode",
            "max load",
            "max req/s",
            "± 95%",
            "p99 ms at max",
            "from",
        ],
        text_columns=2,
        note="'from': search = the engine's SLO search; steps = read off the measured steps "
        "(stable, not client-bound).",
    )
    for v in shown:
        slo = v.slo
        assert slo is not None
        table.rows.append(
            [
                v.key.model,
                v.name,
                fmt_slo(slo.slo_ms),
                _yes(slo.met),
                slo.mode or MISSING,
                fmt_target(slo.max_target) if slo.met else MISSING,
                fmt_rps(slo.max_rps),
                fmt_rps(slo.rps_interval.half_width) if slo.rps_interval else MISSING,
                fmt_ms(slo.p99_ms),
                slo.source,
            ]
        )
    return table


def steps_table(report: ComparisonReport) -> Table:
    table = Table(
        "steps",
        "Every step",
        [
            "model",
            "version",
            "mode",
            "target",
            "arrival",
            "repeat",
            "batch",
            "duration s",
            "requests",
            "req/s",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "mean",
            "p99 uncorr.",
            "errors",
            "mismatches",
            "stable",
            "client-bound",
            "late share",
            "lag p99 ms",
            "gen. CPU",
            "early stop",
            "skipped",
        ],
        text_columns=3,
        note="Latencies in ms. Open loop: from the scheduled send (corrected); 'p99 uncorr.' "
        "from the actual send. 'gen. CPU': load generator CPU as a share of one core.",
    )
    names = _names(report)
    for run in report.runs:
        for s in run.results.steps:
            lat = s.latency_ms
            early = s.early_stopping
            table.rows.append(
                [
                    s.model,
                    _step_name(names, run, s),
                    s.mode,
                    fmt_target(s.target),
                    s.arrival or MISSING,
                    str(s.repeat),
                    str(s.batch_size),
                    fmt_num(s.duration_s),
                    str(s.requests),
                    fmt_rps(s.achieved_rps),
                    fmt_ms(lat.p50),
                    fmt_ms(lat.p90),
                    fmt_ms(lat.p99),
                    fmt_ms(lat.p999),
                    fmt_ms(lat.max),
                    fmt_ms(lat.mean),
                    fmt_ms(lat.uncorrected.p99) if lat.uncorrected else MISSING,
                    str(sum(s.errors_by_code.values())),
                    str(s.version_mismatches),
                    _yes(s.stable),
                    _yes(s.client_bound.flag),
                    fmt_share(s.late_share),
                    fmt_ms(s.dispatch_lag_ms.p99) if s.dispatch_lag_ms else MISSING,
                    fmt_share(s.generator_cpu),
                    (_yes(early.reached) if early else MISSING),
                    s.skipped or "",
                ]
            )
    return table


def _window_spread(step: Step) -> str:
    rps = [w.rps for w in step.windows]
    p99 = [w.p99_ms for w in step.windows if w.p99_ms is not None]
    if len(rps) < 2:
        return "too few measurement windows to judge stability"
    parts = [f"window req/s {fmt_rps(min(rps))}–{fmt_rps(max(rps))}"]
    if rps and min(rps) > 0:
        parts[0] += f" (max/min {max(rps) / min(rps):.2f})"
    if len(p99) >= 2:
        parts.append(f"window p99 {fmt_ms(min(p99))}–{fmt_ms(max(p99))} ms")
    return ", ".join(parts)


def flag_reasons(step: Step) -> list[str]:
    """Why the report does not take a step at face value (empty: nothing to flag)."""
    reasons = []
    if step.skipped:
        return [f"skipped: {step.skipped}"]
    if not step.stable:
        reasons.append(f"unstable: {_window_spread(step)}")
    if step.client_bound.flag:
        why = "; ".join(step.client_bound.reasons) or "no reason recorded"
        reasons.append(f"client-bound: {why}")
    if step.early_stopping is not None and not step.early_stopping.reached:
        reasons.append(
            f"too few queries for p{step.early_stopping.percentile:g}: {step.requests} of "
            f"{step.early_stopping.min_queries} needed"
        )
    errors = sum(step.errors_by_code.values())
    if errors:
        codes = ", ".join(f"{code} {n}" for code, n in sorted(step.errors_by_code.items()))
        reasons.append(f"errors: {codes}")
    if step.version_mismatches:
        reasons.append(f"{step.version_mismatches} replies from another version")
    return reasons


def flagged_table(report: ComparisonReport) -> Table:
    table = Table(
        "flagged",
        "Steps not taken at face value",
        ["model", "version", "mode", "target", "repeat", "reasons"],
        text_columns=3,
        note="Unstable, client-bound, short or failing steps. Charts draw them with hollow "
        "markers; the recommendation does not rank versions by them.",
    )
    names = _names(report)
    for run in report.runs:
        for s in run.results.steps:
            reasons = flag_reasons(s)
            if reasons:
                table.rows.append(
                    [
                        s.model,
                        _step_name(names, run, s),
                        s.mode,
                        fmt_target(s.target),
                        str(s.repeat),
                        "; ".join(reasons),
                    ]
                )
    table.text_columns = 3
    return table


def agreement_table(report: ComparisonReport) -> Table:
    table = Table(
        "agreement",
        "Output agreement per version",
        [
            "model",
            "version",
            "reference",
            "inputs",
            "top-1",
            "detections matched",
            "max abs err",
            "max rel err",
            "score drift",
        ],
        text_columns=3,
        note="Each version's outputs against its reference's on the same fixed inputs.",
    )
    for v in report.versions.values():
        ref = report.versions.get(v.reference) if v.reference else None
        a = v.agreement
        if v.reference is None:
            table.rows.append([v.key.model, v.name, "(is the reference)", *([MISSING] * 6)])
            continue
        table.rows.append(
            [
                v.key.model,
                v.name,
                ref.name if ref else f"v{v.reference.version}",
                str(a.inputs) if a else MISSING,
                fmt_share(a.top1) if a else MISSING,
                fmt_share(a.detection_match) if a else MISSING,
                fmt_error(a.max_abs_error) if a else MISSING,
                fmt_error(a.max_rel_error) if a else MISSING,
                fmt_error(a.score_drift) if a else MISSING,
            ]
        )
    return table


def server_table(report: ComparisonReport) -> Table:
    table = Table(
        "server",
        "Server-side deltas per step",
        [
            "model",
            "version",
            "mode",
            "target",
            "repeat",
            "per version",
            "requests by status",
            "request ms",
            "runtime ms",
            "input batch",
            "processed batch",
            "padding",
            "queue ms",
        ],
        text_columns=3,
        note="What the server's own Prometheus metrics moved by during each step (means over "
        "the step). 'per version: no' (TF Serving) means the counters cover every version of "
        "the model, which is why versions are measured one after another.",
    )
    names = _names(report)
    for run in report.runs:
        for s in run.results.steps:
            d = s.server
            if d is None:
                continue
            processed, padding = d.processed_batch_size, d.padding_size
            pad = (
                fmt_share(padding.sum / processed.sum)
                if padding is not None and processed is not None and processed.sum
                else MISSING
            )
            status = ", ".join(f"{k} {v:g}" for k, v in sorted(d.request_count_by_status.items()))
            table.rows.append(
                [
                    s.model,
                    _step_name(names, run, s),
                    s.mode,
                    fmt_target(s.target),
                    str(s.repeat),
                    _yes(d.per_version),
                    status or MISSING,
                    _mean(d.request_latency_us, 1000.0),
                    _mean(d.runtime_latency_us, 1000.0),
                    _mean(d.input_batch_size),
                    _mean(processed),
                    pad,
                    _mean(d.queuing_latency_us, 1000.0),
                ]
            )
    return table


def report_tables(report: ComparisonReport) -> list[Table]:
    """Every table in page order (the versions table belongs to the header)."""
    tables = [
        slo_table(report),
        steps_table(report),
        flagged_table(report),
        agreement_table(report),
        server_table(report),
    ]
    return [t for t in tables if t is not None]
