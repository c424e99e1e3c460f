"""``results.json`` -> ``report.html`` + ``report.md``: the comparison report.

    runs.py        read and label the runs (a merged report keys versions by run, model, version)
    points.py      one point per version and load: repeats folded, HDR merged, 95% intervals
    summary.py     per version: facts, points, SLO outcome, server batches (ComparisonReport)
    recommend.py   the recommendation lines, derived from the numbers
    charts.py      the charts (matplotlib -> inline SVG, themed by svg.py)
    tables.py      the tables as rows; page.py and markdown.py render them
    writer.py      check the output directory, render, write atomically

``tfsuite report`` (cli.py) is the command; ``tfsuite compare`` calls :func:`write_report`.
"""

from __future__ import annotations

from tfsuite.loadtest.report.recommend import RecommendationLine, recommend
from tfsuite.loadtest.report.runs import Run, VersionKey, load_runs
from tfsuite.loadtest.report.summary import ComparisonReport
from tfsuite.loadtest.report.writer import (
    ReportFiles,
    ReportOutputError,
    check_output_dir,
    write_report,
)

__all__ = [
    "ComparisonReport",
    "RecommendationLine",
    "ReportFiles",
    "ReportOutputError",
    "Run",
    "VersionKey",
    "check_output_dir",
    "load_runs",
    "recommend",
    "write_report",
]
