"""Render a report into a directory: ``report.html`` and ``report.md``, written atomically.

The directory is checked first (created if missing, then a probe file written and removed),
so an unusable ``--out`` fails in one line before any chart is drawn.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tfsuite.atomic import atomic_write_text
from tfsuite.errors import UsageError
from tfsuite.loadtest.report.recommend import RecommendationLine, recommend
from tfsuite.loadtest.report.runs import Run
from tfsuite.loadtest.report.summary import ComparisonReport

__all__ = ["ReportFiles", "ReportOutputError", "check_output_dir", "write_report"]


class ReportOutputError(UsageError):
    """The output directory cannot be written."""


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    markdown: Path
    recommendation: list[RecommendationLine]


def check_output_dir(out_dir: Path) -> Path:
    """Make sure ``out_dir`` exists and takes a new file; ReportOutputError otherwise."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".probe.", delete=True):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ReportOutputError(
            f"cannot write the report to {os.fsdecode(out_dir)!r}: {reason}; "
            "choose another --out directory"
        ) from None
    return out_dir


def write_report(runs: Sequence[Run], out_dir: Path) -> ReportFiles:
    """Check ``out_dir``, build the report from ``runs``, write both files."""
    from tfsuite import __version__
    from tfsuite.loadtest.report.charts import model_charts
    from tfsuite.loadtest.report.markdown import render_markdown
    from tfsuite.loadtest.report.page import render_html
    from tfsuite.loadtest.report.tables import report_tables

    out_dir = check_output_dir(out_dir)
    report = ComparisonReport.build(runs)
    lines = recommend(report)
    charts = [chart for model in report.models for chart in model_charts(report, model)]
    tables = report_tables(report)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    html_path = atomic_write_text(
        out_dir / "report.html", render_html(report, lines, charts, tables, generated, __version__)
    )
    md_path = atomic_write_text(
        out_dir / "report.md", render_markdown(report, lines, charts, tables, generated)
    )
    return ReportFiles(html_path, md_path, lines)
