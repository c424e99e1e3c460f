"""``report.html``: one self-contained page (inline CSS and SVG, no script, no fetch).

A Content-Security-Policy of ``default-src 'none'`` makes the promise checkable: the
browser itself refuses (and logs) any request the page would make.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from importlib import resources
from string import Template

from tfsuite.loadtest.report.charts import Chart
from tfsuite.loadtest.report.formatting import fmt_slo
from tfsuite.loadtest.report.recommend import RecommendationLine
from tfsuite.loadtest.report.runs import Run
from tfsuite.loadtest.report.summary import ComparisonReport
from tfsuite.loadtest.report.tables import Table, versions_table

__all__ = ["render_html"]

#: column -> the cell value that marks a problem (shown in the warning colour)
_BAD_VALUES = {"stable": "no", "client-bound": "yes", "meets it": "no", "early stop": "no"}
_WRAP_COLUMNS = {"reasons", "skipped", "requests by status"}
#: charts that draw one marker per step (hollow when the step is not trusted)
_MARKED = {"latency-vs-load", "throughput-vs-concurrency", "p99-vs-throughput",
           "queueing-vs-load", "open-loop-correction"}  # fmt: skip
_HOLLOW = " Hollow markers: unstable or client-bound steps."


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def table_html(table: Table) -> str:
    head = "".join(
        f'<th class="{"text" if i < table.text_columns or c in _WRAP_COLUMNS else "num"}">'
        f"{_e(c)}</th>"
        for i, c in enumerate(table.columns)
    )
    body = []
    for row in table.rows:
        cells = []
        for i, (column, value) in enumerate(zip(table.columns, row, strict=True)):
            classes = ["text" if i < table.text_columns else "num"]
            if column in _WRAP_COLUMNS:
                classes = ["wrap"]
            if _BAD_VALUES.get(column) == value:
                classes.append("flag-yes")
            cells.append(f'<td class="{" ".join(classes)}">{_e(value)}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    if not table.rows:
        body.append(f'<tr><td class="text" colspan="{len(table.columns)}">none</td></tr>')
    note = f'<p class="note">{_e(table.note)}</p>' if table.note else ""
    return (
        f'<section class="table" id="table-{table.id}"><h3>{_e(table.title)}</h3>'
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>{note}</section>"
    )


def _run_html(run: Run) -> str:
    info = run.results.run
    m = info.machine
    server = info.server
    memory = f", {m.memory_bytes / 2**30:.1f} GiB" if m.memory_bytes else ""
    machine = f"{m.hostname or '?'} — {m.platform or '?'}, {m.cores} cores{memory}, " + (
        f"GPU {m.gpu}" if m.gpu else "no GPU"
    )
    batching = {True: "batching on", False: "batching off", None: "batching unknown"}[
        server.batching
    ]
    scalars = {k: v for k, v in info.settings.items() if not isinstance(v, (list, dict))}
    settings = ", ".join(f"{k}={v}" for k, v in scalars.items()) or "-"
    # Runs combined into this one (the demo's compare calls): their commands, one a line.
    parts = [p for p in info.settings.get("runs", []) if isinstance(p, dict) and "command" in p]
    commands = "".join(f"<div><code>{_e(p['command'])}</code></div>" for p in parts)
    rows = [
        ("file", f"<code>{_e(run.path)}</code>"),
        ("tool", _e(f"{info.tool} (tfsuite {info.tfsuite_version or '?'}"
                    f"{', git ' + info.git_sha[:10] if info.git_sha else ''})")),
        ("command", f"<code>{_e(info.command)}</code>"),
        ("when", _e(f"{info.started} → {info.ended or 'not finished'}")),
        ("machine", _e(machine)),
        ("server", _e(f"{server.kind} at {server.address}"
                      f"{' (REST ' + server.rest_address + ')' if server.rest_address else ''}, {batching}")),
        ("metrics", _e(server.metrics_url or "not scraped")),
        ("model", _e(info.model)),
        ("SLO", _e(fmt_slo(info.slo_p99_ms) if info.slo_p99_ms is not None else "none set")),
        ("settings", _e(settings)),
        *([("combines", commands)] if commands else []),
        ("status", _e("complete" if info.complete else f"INCOMPLETE: {info.incomplete_reason or 'no reason recorded'}")),
    ]  # fmt: skip
    items = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<h3>{_e(run.title)}</h3><dl class="run">{items}</dl>'


def _chart_html(chart: Chart) -> str:
    anchor = f"chart-{_slug(chart.model)}-{chart.kind}"
    wide = " wide" if chart.kind in ("latency-vs-load", "batch-sizes") else ""
    if chart.svg is None:
        return (
            f'<figure class="chart missing{wide}" id="{anchor}" data-chart="{chart.kind}" '
            f'data-missing="true"><h3>{_e(chart.title)}</h3>'
            f"<figcaption>Not drawn: {_e(chart.missing)}.</figcaption></figure>"
        )
    return (
        f'<figure class="chart{wide}" id="{anchor}" data-chart="{chart.kind}">'
        f"<h3>{_e(chart.title)}</h3>{chart.svg}<figcaption>{_e(chart.caption)}"
        f"{_HOLLOW if chart.kind in _MARKED else ''}</figcaption></figure>"
    )


def _recommendation_html(lines: Sequence[RecommendationLine]) -> str:
    items = "".join(f'<li class="{line.kind}">{_e(line.text)}</li>' for line in lines)
    return (
        '<section class="recommendation" id="recommendation"><h2>Recommendation</h2>'
        f'<ul class="recommendation">{items}</ul></section>'
    )


def render_html(
    report: ComparisonReport,
    lines: Sequence[RecommendationLine],
    charts: Sequence[Chart],
    tables: Sequence[Table],
    generated: str,
    version: str,
) -> str:
    models = report.models
    title = f"tfsuite comparison: {', '.join(models)}"
    parts = [
        (
            f"<header><h1>{_e(title)}</h1>"
            f'<p class="sub">{len(report.versions)} versions from {len(report.runs)} run'
            f"{'s' if report.merged else ''}; rendered {_e(generated)}</p></header>"
        )
    ]
    for run in report.incomplete:
        parts.append(
            f'<div class="banner" role="alert" id="incomplete-{_slug(run.label or "run")}">'
            f"Incomplete run: {_e(run.title)} — "
            f"{_e(run.results.run.incomplete_reason or 'no reason recorded')}. "
            "The figures below cover only the steps that finished.</div>"
        )
    toc = ['<a href="#recommendation">Recommendation</a>', '<a href="#runs">Runs</a>']
    toc += [f'<a href="#charts-{_slug(m)}">Charts: {_e(m)}</a>' for m in models]
    toc += [f'<a href="#table-{t.id}">{_e(t.title)}</a>' for t in tables]
    parts.append(f'<nav class="toc">{"".join(toc)}</nav>')
    parts.append(_recommendation_html(lines))
    parts.append('<section id="runs"><h2>Runs</h2>')
    parts += [_run_html(run) for run in report.runs]
    parts.append(table_html(versions_table(report)) + "</section>")
    for model in models:
        figures = "".join(_chart_html(c) for c in charts if c.model == model)
        parts.append(
            f'<section class="model" id="charts-{_slug(model)}"><h2>Charts: {_e(model)}</h2>'
            f'<div class="charts">{figures}</div></section>'
        )
    parts.append('<section id="tables"><h2>Tables</h2>')
    parts += [table_html(t) for t in tables]
    parts.append("</section>")
    parts.append(
        f"<footer>tfsuite {_e(version)} · self-contained: no scripts, no network requests; "
        "charts are inline SVG (matplotlib) and follow the light/dark colour scheme.</footer>"
    )
    template = Template(resources.files(__package__).joinpath("template.html").read_text("utf-8"))
    return template.substitute(title=_e(title), version=_e(version), body="\n".join(parts))
