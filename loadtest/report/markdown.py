"""``report.md``: the recommendation and the same tables, for PRs and CI logs."""

from __future__ import annotations

from collections.abc import Sequence

from tfsuite.loadtest.report.charts import Chart
from tfsuite.loadtest.report.formatting import fmt_slo
from tfsuite.loadtest.report.recommend import RecommendationLine
from tfsuite.loadtest.report.summary import ComparisonReport
from tfsuite.loadtest.report.tables import Table, versions_table

__all__ = ["render_markdown"]


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def table_markdown(table: Table) -> str:
    align = ["---" if i < table.text_columns else "---:" for i in range(len(table.columns))]
    lines = [
        f"### {table.title}",
        "",
        "| " + " | ".join(_cell(c) for c in table.columns) + " |",
        "|" + "|".join(align) + "|",
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in table.rows]
    if not table.rows:
        lines.append("| none |" + " |" * (len(table.columns) - 1))
    if table.note:
        lines += ["", f"_{table.note}_"]
    return "\n".join(lines)


def render_markdown(
    report: ComparisonReport,
    lines: Sequence[RecommendationLine],
    charts: Sequence[Chart],
    tables: Sequence[Table],
    generated: str,
) -> str:
    out = [f"# tfsuite comparison: {', '.join(report.models)}", ""]
    for run in report.incomplete:
        reason = run.results.run.incomplete_reason or "no reason recorded"
        out += [f"> **INCOMPLETE RUN** — {run.title}: {reason}", ""]
    out += ["## Recommendation", ""]
    for line in lines:
        text = f"**{line.text}**" if line.kind == "verdict" else line.text
        out.append(f"- {text}")
    out += ["", "## Runs", ""]
    for run in report.runs:
        info = run.results.run
        slo = fmt_slo(info.slo_p99_ms) if info.slo_p99_ms is not None else "none"
        out += [
            (
                f"- **{run.title}** — `{info.command}`; {info.started} → {info.ended or 'not finished'}; "
                f"server {info.server.kind} at {info.server.address}; SLO {slo}; "
                f"{'complete' if info.complete else 'INCOMPLETE'}; file `{run.path}`"
            )
        ]
    out += ["", table_markdown(versions_table(report)), ""]
    drawn = [c for c in charts if c.svg is not None]
    missing = [c for c in charts if c.svg is None]
    out += [f"Charts ({len(drawn)}) are in `report.html`."]
    if missing:
        out.append(
            "Not drawn: "
            + "; ".join(f"{c.model} {c.title.lower()} ({c.missing})" for c in missing)
            + "."
        )
    out += ["", "## Tables", ""]
    for table in tables:
        out += [table_markdown(table), ""]
    out.append(f"_Rendered {generated}._")
    return "\n".join(out) + "\n"
