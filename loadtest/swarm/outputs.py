"""What a Locust run leaves next to Locust's ``--csv`` files (master / local runner, at quit).

* ``hdr_<entry>.json`` — per entry, every stage merged: the HdrHistogram (microseconds,
  1 us .. 60 s, 3 significant digits) in its compressed base64 form, its count, and the
  percentiles it gives;
* ``percentiles.csv`` — per entry: requests, failures, p50/p90/p99/p99.9/p99.99/max in ms
  from the histogram (microsecond resolution, not Locust's millisecond rounding);
* ``server_deltas.json`` — per stage and version, what the server's Prometheus counters say
  happened (:func:`~tfsuite.loadtest.server_metrics.server_deltas`), when it was scraped;
* ``results.json`` — the suite's results contract (``tool="locust"``): one step per
  (stage, version), so ``tfsuite report`` reads a Locust run like a ``tfsuite compare`` run.

Without ``--csv`` nothing is written; the percentile table is logged either way.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfsuite.atomic import atomic_write_text
from tfsuite.loadtest.results import (
    ClientBound,
    Results,
    RunInfo,
    ServerInfo,
    Step,
    StepLatency,
    VersionInfo,
)
from tfsuite.loadtest.run_info import git_sha, machine_info, tfsuite_version
from tfsuite.loadtest.server_metrics import server_deltas
from tfsuite.loadtest.stats import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS

if TYPE_CHECKING:
    from tfsuite.loadtest.swarm.histograms import EntryRecord
    from tfsuite.loadtest.swarm.session import SwarmSession

__all__ = ["PERCENTILES", "entry_slug", "write_outputs"]

log = logging.getLogger("tfsuite.locust")

#: percentiles.csv columns -> percentile.
PERCENTILES: dict[str, float] = {
    "50%": 50.0,
    "90%": 90.0,
    "99%": 99.0,
    "99.9%": 99.9,
    "99.99%": 99.99,
    "100%": 100.0,
}
#: An open-loop stage that reached less than this share of its target is reported.
TARGET_SHARE = 0.9


def entry_slug(name: str) -> str:
    """A file-name-safe form of an entry name (``Predict m v1 original`` -> ``m_v1_original``)."""
    text = name.removeprefix("Predict ").strip()
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "entry"


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat() if ts else None


def _percentile_row(name: str, record: EntryRecord, failures: int) -> list[Any]:
    h = record.histogram
    row: list[Any] = ["grpc/rest", name, h.count, failures]
    for q in PERCENTILES.values():
        value = h.max_ms() if q == 100.0 else h.percentile_ms(q)
        row.append(f"{value:.3f}" if value is not None else "")
    return row


def write_outputs(session: SwarmSession, exit_code: int) -> Path | None:
    """Write the files (atomically) and log the percentile table; the results path or None."""
    env = session.environment
    plan = session.plan
    assert plan is not None
    by_entry = session.histograms.by_entry()
    locust_stats = env.runner.stats
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["Type", "Name", "Request Count", "Failure Count", *PERCENTILES])
    for entry in plan.entries:
        record = by_entry.get(entry.name)
        if record is None:
            continue
        failures = sum(record.errors_by_code.values())
        row = _percentile_row(entry.name, record, failures)
        row[0] = "rest" if plan.rest else "grpc"
        writer.writerow(row)
    log.info("tfsuite: latency from the HDR histograms (ms)\n%s", table.getvalue().rstrip())
    _report_targets(session)

    prefix = getattr(env.parsed_options, "csv_prefix", None)
    if not prefix:
        log.info("tfsuite: no --csv given: HDR files and results.json not written")
        return None
    out = Path(prefix).parent
    out.mkdir(parents=True, exist_ok=True)
    _final_locust_stats_csv(env, prefix)
    atomic_write_text(out / "percentiles.csv", table.getvalue())
    for name, record in by_entry.items():
        h = record.histogram
        body = {
            "entry": name,
            "unit": "us",
            "lowest_us": LOWEST_US,
            "highest_us": HIGHEST_US,
            "significant_digits": SIGNIFICANT_DIGITS,
            "count": h.count,
            "clamped": h.clamped,
            "errors_by_code": dict(record.errors_by_code),
            "version_mismatches": record.version_mismatches,
            "percentiles_ms": {
                k: (h.max_ms() if q == 100.0 else h.percentile_ms(q))
                for k, q in PERCENTILES.items()
            },
            "hdr": h.encode(),
        }
        atomic_write_text(out / f"hdr_{entry_slug(name)}.json", json.dumps(body, indent=2) + "\n")
    deltas = _server_deltas(session)
    if deltas:
        atomic_write_text(out / "server_deltas.json", json.dumps(deltas, indent=2) + "\n")
    results = _results(session, exit_code, locust_stats)
    path = results.write(out / "results.json")
    log.info("tfsuite: wrote %s (HDR files, percentiles.csv, results.json)", out)
    return path


def _final_locust_stats_csv(env: Any, prefix: str) -> None:
    """Rewrite Locust's ``<prefix>_stats.csv`` with the final figures.

    Locust rewrites that file once a second while it runs and not at shutdown, so the file
    it leaves misses the last second; the same rows, written from the final statistics,
    make it agree with the summary Locust prints and with the HDR files."""
    from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

    rows = io.StringIO()
    StatsCSV(env, PERCENTILES_TO_REPORT).requests_csv(csv.writer(rows))
    atomic_write_text(Path(f"{prefix}_stats.csv"), rows.getvalue())


def _server_deltas(session: SwarmSession) -> list[dict[str, Any]]:
    plan = session.plan
    assert plan is not None
    out: list[dict[str, Any]] = []
    for run in session.stage_runs:
        for entry in plan.entries:
            d = server_deltas(run.before, run.after, plan.model, entry.version)
            if d is not None:
                out.append(
                    {"stage": run.stage.index, "entry": entry.name, **d.model_dump(mode="json")}
                )
    return out


def _stage_records(session: SwarmSession) -> dict[tuple[int, str], EntryRecord]:
    return session.histograms.settle()


def _report_targets(session: SwarmSession) -> None:
    """Open-loop stages that fell short of their target rate, said out loud."""
    records = _stage_records(session)
    for run in session.stage_runs:
        if run.stage.mode != "open":
            continue
        count = sum(
            r.histogram.count - sum(r.errors_by_code.values())
            for (s, _), r in records.items()
            if s == run.stage.index
        )
        achieved = count / run.duration_s  # successful replies/s
        if achieved < TARGET_SHARE * run.stage.target:
            log.warning(
                "tfsuite: stage %d reached %.1f of %g requests/s (%.0f%%): the server or the "
                "load generator could not keep up; add users (--tfs-rate-per-user lower) or workers",
                run.stage.index,
                achieved,
                run.stage.target,
                100 * achieved / run.stage.target,
            )


def _results(session: SwarmSession, exit_code: int, locust_stats: Any) -> Results:
    env = session.environment
    plan = session.plan
    settings = session.settings
    assert plan is not None and settings is not None
    records = _stage_records(session)
    steps: list[Step] = []
    for run in session.stage_runs:
        stage = run.stage
        for entry in plan.entries:
            record = records.get((stage.index, entry.name))
            if record is None:
                continue
            h = record.histogram
            failures = sum(record.errors_by_code.values())
            achieved = (h.count - failures) / run.duration_s  # successful replies/s
            bound = ClientBound()
            if stage.mode == "open" and achieved < TARGET_SHARE * stage.target:
                bound = ClientBound(
                    flag=True,
                    reasons=[f"achieved {100 * achieved / stage.target:.0f}% of target rate"],
                )
            steps.append(
                Step(
                    model=plan.model,
                    version=entry.version,
                    label=entry.label or entry.variant,
                    mode=stage.mode,
                    target=stage.target,
                    arrival="constant" if stage.mode == "open" else None,
                    repeat=0,
                    batch_size=settings.batch_size,
                    duration_s=run.duration_s,
                    requests=h.count,
                    achieved_rps=achieved,
                    latency_ms=StepLatency(**h.summary().model_dump()),
                    errors_by_code=dict(record.errors_by_code),
                    version_mismatches=record.version_mismatches,
                    stable=False,  # Locust runs are not judged for stability (no windows)
                    client_bound=bound,
                    server=server_deltas(run.before, run.after, plan.model, entry.version),
                    hdr=h.encode(),
                )
            )
    complete = exit_code == 0 and session.failure is None and not session.interrupted
    reason = session.failure or (
        ""
        if complete
        else "interrupted (Ctrl-C)"
        if session.interrupted
        else f"exit code {exit_code}"
    )
    metrics_url = session.scraper.url if session.scraper is not None else None
    run_info = RunInfo(
        tool="locust",
        command=shlex.join(sys.argv),
        git_sha=git_sha(),
        tfsuite_version=tfsuite_version(),
        machine=machine_info(),
        started=_iso(session.started) or "",
        ended=_iso(session.ended),
        server=ServerInfo(
            address=env.host or "",
            kind="unknown",
            rest_address=env.host if settings.rest else None,
            metrics_url=metrics_url if session.scraper and session.scraper.reachable else None,
        ),
        model=plan.model,
        complete=complete,
        incomplete_reason=reason,
        settings={
            "batch_size": settings.batch_size,
            "inputs": plan.pool.source,
            "api": "rest" if settings.rest else "grpc",
            "weights": {e.name: e.weight for e in plan.entries},
            "stability": "not judged (Locust run)",
            "locust_requests": {
                e.name: locust_stats.get(e.name, "rest" if settings.rest else "grpc").num_requests
                for e in plan.entries
            },
        },
    )
    versions = [
        VersionInfo(model=plan.model, version=e.version, label=e.label, variant=e.variant)
        for e in plan.entries
    ]
    return Results(run=run_info, versions=versions, steps=steps)
