"""What ``tfsuite compare`` writes and prints: ``results.json`` (the contract),
``results.csv`` (one row per step), the live progress line and the per-version table."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from tfsuite.atomic import atomic_write_text
from tfsuite.loadtest.results import Results, Step

__all__ = [
    "CSV_COLUMNS",
    "RESULTS_CSV",
    "RESULTS_JSON",
    "step_line",
    "step_name",
    "step_rows",
    "versions_summary",
    "versions_table",
    "write_outputs",
]

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"

CSV_COLUMNS = (
    "model",
    "version",
    "label",
    "mode",
    "target",
    "arrival",
    "repeat",
    "batch_size",
    "duration_s",
    "requests",
    "achieved_rps",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "p999_ms",
    "max_ms",
    "mean_ms",
    "uncorrected_p50_ms",
    "uncorrected_p99_ms",
    "errors",
    "version_mismatches",
    "stable",
    "windows",
    "client_bound",
    "client_bound_reasons",
    "late_share",
    "dispatch_lag_p99_ms",
    "generator_cpu",
    "server_requests",
    "server_mean_batch_size",
    "skipped",
)


def _mean_batch(step: Step) -> float | None:
    hist = step.server.processed_batch_size if step.server else None
    return hist.sum / hist.count if hist is not None and hist.count else None


def step_rows(steps: Sequence[Step]) -> list[dict[str, object]]:
    rows = []
    for s in steps:
        lat, unc = s.latency_ms, s.latency_ms.uncorrected
        rows.append(
            {
                "model": s.model,
                "version": s.version,
                "label": s.label or "",
                "mode": s.mode,
                "target": s.target,
                "arrival": s.arrival or "",
                "repeat": s.repeat,
                "batch_size": s.batch_size,
                "duration_s": round(s.duration_s, 3),
                "requests": s.requests,
                "achieved_rps": round(s.achieved_rps, 3),
                "p50_ms": lat.p50,
                "p90_ms": lat.p90,
                "p99_ms": lat.p99,
                "p999_ms": lat.p999,
                "max_ms": lat.max,
                "mean_ms": round(lat.mean, 4) if lat.mean is not None else None,
                "uncorrected_p50_ms": unc.p50 if unc else None,
                "uncorrected_p99_ms": unc.p99 if unc else None,
                "errors": ";".join(f"{c}:{n}" for c, n in sorted(s.errors_by_code.items())),
                "version_mismatches": s.version_mismatches,
                "stable": s.stable,
                "windows": len(s.windows),
                "client_bound": s.client_bound.flag,
                "client_bound_reasons": "; ".join(s.client_bound.reasons),
                "late_share": s.late_share,
                "dispatch_lag_p99_ms": s.dispatch_lag_ms.p99 if s.dispatch_lag_ms else None,
                "generator_cpu": round(s.generator_cpu, 3) if s.generator_cpu is not None else None,
                "server_requests": sum(s.server.request_count_by_status.values())
                if s.server
                else None,
                "server_mean_batch_size": _mean_batch(s),
                "skipped": s.skipped,
            }
        )
    return rows


def write_outputs(results: Results, out: Path) -> Path:
    """``results.json`` and ``results.csv`` in ``out``, each written atomically."""
    path = results.write(out / RESULTS_JSON)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in step_rows(results.steps):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    atomic_write_text(out / RESULTS_CSV, buffer.getvalue())
    return path


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def step_name(step: Step) -> str:
    target = f"c={step.target:g}" if step.mode == "closed" else f"{step.target:g} req/s"
    who = f"v{step.version}" + (f" ({step.label})" if step.label else "")
    repeat = f" #{step.repeat + 1}" if step.repeat else ""
    return f"{who} {step.mode} {target}{repeat}"


def step_line(step: Step) -> str:
    """One line per finished step (the live progress line's final form)."""
    if step.skipped:
        return f"{step_name(step)}: skipped ({step.skipped})"
    lat = step.latency_ms
    parts = [
        f"{step.achieved_rps:.1f} req/s",
        f"p50 {_ms(lat.p50)} ms",
        f"p99 {_ms(lat.p99)} ms",
    ]
    if lat.uncorrected is not None:
        parts.append(f"(uncorrected p99 {_ms(lat.uncorrected.p99)} ms)")
    errors = sum(step.errors_by_code.values())
    if errors:
        parts.append(f"errors {errors}")
    parts.append("stable" if step.stable else f"UNSTABLE after {len(step.windows)} windows")
    if step.client_bound.flag:
        parts.append("CLIENT-BOUND: " + "; ".join(step.client_bound.reasons))
    batch = _mean_batch(step)
    if batch is not None:
        parts.append(f"server mean batch {batch:.1f}")
    return f"{step_name(step)}: " + ", ".join(parts)


def versions_table(results: Results) -> Table:
    """One row per measured step, versions one after another (latencies in ms)."""
    table = Table(
        title=f"tfsuite compare: {results.run.model} (latency ms; cb: client-bound)",
        title_justify="left",
    )
    for name in ("ver", "load", "req/s", "p50", "p90", "p99", "p99.9", "err", "stable", "cb"):
        table.add_column(name, justify="left" if name in ("ver", "load") else "right")
    table.add_column("batch", justify="right")
    for s in results.steps:
        lat = s.latency_ms
        load = f"c={s.target:g}" if s.mode == "closed" else f"{s.target:g}/s"
        table.add_row(
            f"v{s.version}",
            load + (f" #{s.repeat + 1}" if s.repeat else ""),
            "-" if s.skipped else f"{s.achieved_rps:.1f}",
            _ms(lat.p50),
            _ms(lat.p90),
            _ms(lat.p99),
            _ms(lat.p999),
            str(sum(s.errors_by_code.values())),
            "skipped" if s.skipped else ("yes" if s.stable else "no"),
            "yes" if s.client_bound.flag else "no",
            _ms(_mean_batch(s)),
        )
    return table


def versions_summary(results: Results) -> Table:
    """Per version: variant, size, load cost, agreement with the reference, SLO result."""
    table = Table(title="versions (agreement vs the reference version)", title_justify="left")
    for name in ("ver", "variant", "MB", "load s", "1st ms", "RSS MB", "agree", "max err"):
        table.add_column(name, justify="left" if name in ("ver", "variant") else "right")
    table.add_column("SLO req/s", justify="right")
    slo = {(r.version): r for r in results.slo}
    for v in results.versions:
        agreement = "reference"
        if v.agreement is not None:
            a = v.agreement
            share = a.top1 if a.top1 is not None else a.detection_match
            agreement = f"{share:.1%}" if share is not None else "-"
        result = slo.get(v.version)
        table.add_row(
            f"v{v.version}",
            v.variant or v.label or "",
            f"{v.size_bytes / 1e6:.2f}" if v.size_bytes else "-",
            f"{v.load_seconds:.2f}" if v.load_seconds is not None else "-",
            _ms(v.first_request_ms),
            f"{v.rss_delta_bytes / 2**20:.1f}" if v.rss_delta_bytes is not None else "-",
            agreement,
            f"{v.agreement.max_abs_error:.3g}"
            if v.agreement and v.agreement.max_abs_error is not None
            else "-",
            f"{result.max_rps_under_slo:.1f}"
            if result and result.max_rps_under_slo is not None
            else ("not met" if result else "-"),
        )
    return table
