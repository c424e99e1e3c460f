"""The report's charts, one model at a time, every version on shared axes.

Each builder returns a :class:`Chart` (inline SVG plus what it shows) or None when the runs
hold nothing it could draw (e.g. no open-loop step); the page then says which chart is
missing and why instead of drawing an empty frame. Hollow markers are steps the report does
not trust: unstable, or limited by the load generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from tfsuite.loadtest.report.formatting import (
    fmt_ratio,
    fmt_rps,
    fmt_share,
    fmt_slo,
    load_unit,
)
from tfsuite.loadtest.report.points import LoadPoint
from tfsuite.loadtest.report.recommend import agreement_share
from tfsuite.loadtest.report.summary import ComparisonReport, VersionSummary
from tfsuite.loadtest.report.svg import SLO, chart_style, figure_svg, new_figure, series_colour
from tfsuite.loadtest.results import HistogramDelta, Mode

__all__ = ["CHART_KINDS", "Chart", "bucket_counts", "model_charts"]


@dataclass(frozen=True)
class Chart:
    kind: str
    model: str
    title: str
    caption: str
    svg: str | None
    missing: str = ""
    """Why the chart is not drawn (``svg`` is None)."""


_MODES: tuple[Mode, ...] = ("closed", "open")
#: Figure widths (inches) for a chart across the page and for one of two side by side, so
#: that text lands at about the same size on screen in both.
WIDE, HALF = 11.0, 5.6
_PERCENTILES = (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p999", "p99.9"))


class _Palette:
    """One colour per series, numbered within each model: v1 has the same colour in every
    model's charts."""

    def __init__(self, report: ComparisonReport) -> None:
        self._index = {
            v.key: i for model in report.models for i, v in enumerate(report.of_model(model))
        }

    def __call__(self, summary: VersionSummary) -> str:
        return series_colour(self._index[summary.key])


def _plot_series(
    ax: Axes,
    points: Sequence[LoadPoint],
    x: Callable[[LoadPoint], float | None],
    y: Callable[[LoadPoint], float | None],
    colour: str,
    label: str | None,
    linestyle: str = "-",
    yerr: Callable[[LoadPoint], float] | None = None,
) -> bool:
    """A line through the points plus one marker per point (hollow when not trusted)."""
    xy = [(x(p), y(p), p) for p in points]
    xy = [(a, b, p) for a, b, p in xy if a is not None and b is not None]
    if not xy:
        return False
    xs = [a for a, _, _ in xy]
    ys = [b for _, b, _ in xy]
    ax.plot(xs, ys, color=colour, linestyle=linestyle, label=label)
    if yerr is not None:
        ax.errorbar(
            xs, ys, yerr=[yerr(p) for _, _, p in xy], fmt="none", ecolor=colour, elinewidth=1,
            capsize=2,
        )  # fmt: skip
    for a, b, p in xy:
        face = colour if p.trusted else "none"
        ax.plot([a], [b], marker="o", color=colour, markerfacecolor=face, linestyle="none")
    return True


def _legend(fig: Figure, ax: Axes) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        wide = fig.get_figwidth() >= WIDE
        ncols = min(len(labels), 4 if wide else (3 if len(labels) == 3 else 2))
        fig.legend(handles, labels, loc="outside lower center", ncols=ncols)


def _modes(versions: Sequence[VersionSummary]) -> list[Mode]:
    return [m for m in _MODES if any(v.points_in(m) for v in versions)]


def _log_if_wide(ax: Axes, values: Sequence[float]) -> None:
    clean = [v for v in values if v and v > 0]
    if clean and max(clean) / min(clean) > 20:
        ax.set_yscale("log")


def latency_vs_load(versions: list[VersionSummary], colour: _Palette) -> Figure | None:
    modes = _modes(versions)
    if not modes:
        return None
    fig = new_figure(WIDE, 1.0 + 2.5 * len(modes))
    axes = fig.subplots(len(modes), 4, sharey=True, squeeze=False)
    all_ms = []
    for row, mode in enumerate(modes):
        for col, (attr, name) in enumerate(_PERCENTILES):
            ax = axes[row][col]
            for v in versions:
                _plot_series(
                    ax, v.points_in(mode), lambda p: p.target, lambda p, a=attr: getattr(p, a),
                    colour(v), v.name if row == 0 and col == 0 else None,
                )  # fmt: skip
                all_ms += [getattr(p, attr) for p in v.points_in(mode)]
            ax.set_title(f"{name} ({mode} loop)")
            ax.set_xlabel(load_unit(mode))
            ax.set_xlim(left=0)
        axes[row][0].set_ylabel("latency ms")
    _log_if_wide(axes[0][0], all_ms)
    _legend(fig, axes[0][0])
    return fig


def throughput_vs_concurrency(versions: list[VersionSummary], colour: _Palette) -> Figure | None:
    if not any(v.points_in("closed") for v in versions):
        return None
    fig = new_figure(HALF, 3.6)
    ax = fig.subplots()
    for v in versions:
        _plot_series(
            ax, v.points_in("closed"), lambda p: p.target, lambda p: p.rps, colour(v), v.name,
            yerr=lambda p: p.rps_interval.half_width if p.rps_interval else 0.0,
        )  # fmt: skip
    ax.set_xlim(left=0)
    ax.set_xlabel("concurrency (clients in flight)")
    ax.set_ylabel("achieved req/s")
    ax.set_ylim(bottom=0)
    _legend(fig, ax)
    return fig


def p99_vs_throughput(versions: list[VersionSummary], colour: _Palette) -> Figure | None:
    if not any(v.points for v in versions):
        return None
    fig = new_figure(HALF, 4.0)
    ax = fig.subplots()
    p99s: list[float] = []
    for v in versions:
        for mode, style in (("closed", "-"), ("open", "--")):
            points = v.points_in(mode)  # type: ignore[arg-type]
            label = v.name + ("" if mode == "closed" else " (open loop)")
            _plot_series(ax, points, lambda p: p.rps, lambda p: p.p99, colour(v), label, style)
            p99s += [p.p99 for p in points if p.p99 is not None]
        if v.slo is not None and v.slo.met and v.slo.max_rps is not None and v.slo.p99_ms:
            ax.plot(
                [v.slo.max_rps], [v.slo.p99_ms], marker="*", markersize=13, color=colour(v),
                markeredgecolor=SLO, linestyle="none",
            )  # fmt: skip
            ax.annotate(
                f"{fmt_rps(v.slo.max_rps)} req/s", (v.slo.max_rps, v.slo.p99_ms),
                textcoords="offset points", xytext=(6, -10), fontsize=7.5, color=colour(v),
            )  # fmt: skip
    slo_ms = next((v.slo.slo_ms for v in versions if v.slo is not None), None)
    if slo_ms is not None:
        ax.axhline(slo_ms, color=SLO, linestyle=":", linewidth=1.4, label=f"SLO {fmt_slo(slo_ms)}")
        p99s.append(slo_ms)
    _log_if_wide(ax, p99s)
    ax.set_xlabel("achieved req/s")
    ax.set_ylabel("p99 latency ms")
    _legend(fig, ax)
    return fig


def bucket_counts(delta: HistogramDelta) -> list[tuple[float, float]]:
    """Prometheus cumulative buckets -> (upper bound, count in that bucket), ascending."""
    bounds = sorted((float(le), n) for le, n in delta.buckets.items())
    out, previous = [], 0.0
    for bound, cumulative in bounds:
        out.append((bound, max(0.0, cumulative - previous)))
        previous = cumulative
    return out


def _bucket_label(lower: float | None, upper: float) -> str:
    if math.isinf(upper):
        return f">{lower:g}" if lower is not None else "all"
    if lower is None:
        return f"≤{upper:g}"
    low = math.floor(lower) + 1
    return f"{upper:g}" if low >= upper else f"{low:g}–{upper:g}"


def batch_sizes(versions: list[VersionSummary], colour: _Palette) -> Figure | None:
    shown = [v for v in versions if v.processed_batch and v.processed_batch.count > 0]
    if not shown:
        return None
    bounds = sorted(
        {
            b
            for v in shown
            for delta in (v.processed_batch, v.padding)
            if delta
            for b, n in bucket_counts(delta)
            if n > 0
        }
    )
    labels = [_bucket_label(bounds[i - 1] if i else None, b) for i, b in enumerate(bounds)]
    cols = min(3, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig = new_figure(WIDE, 1.0 + 2.4 * rows)
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    for i, v in enumerate(shown):
        ax = axes[i // cols][i % cols]
        assert v.processed_batch is not None
        series = [("processed batch size", v.processed_batch, 0.0, 1.0)]
        if v.padding is not None and v.padding.count > 0:
            series.append(("padding rows per batch", v.padding, 0.4, 0.4))
        width = 0.4 if len(series) > 1 else 0.8
        for name, delta, offset, alpha in series:
            counts = dict(bucket_counts(delta))
            total = sum(counts.values()) or 1.0
            xs = [j - (0.2 if len(series) > 1 else 0.0) + offset for j in range(len(bounds))]
            ax.bar(
                xs, [counts.get(b, 0.0) / total * 100 for b in bounds], width=width,
                color=colour(v), alpha=alpha, label=name if i == 0 else None,
            )  # fmt: skip
        mean = v.processed_batch.sum / v.processed_batch.count
        pad = (
            f", padding {fmt_share(v.padding.sum / v.processed_batch.sum)}"
            if v.padding is not None and v.processed_batch.sum
            else ""
        )
        ax.set_title(f"{v.name}\nmean batch {mean:.1f}{pad}", fontsize=8.5)
        ax.set_xticks(range(len(bounds)), labels, rotation=45 if len(bounds) > 6 else 0)
        if i % cols == 0:
            ax.set_ylabel("% of batches")
        if i // cols == rows - 1 or i + cols >= len(shown):
            ax.set_xlabel("rows per batch (server-side)")
    for j in range(len(shown), rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    _legend(fig, axes[0][0])
    return fig


def queueing_vs_load(versions: list[VersionSummary], colour: _Palette) -> Figure | None:
    modes = [
        m
        for m in _modes(versions)
        if any(p.queue_ms is not None for v in versions for p in v.points_in(m))
    ]
    if not modes:
        return None
    fig = new_figure(HALF, 3.4)
    axes = fig.subplots(1, len(modes), squeeze=False)[0]
    for ax, mode in zip(axes, modes, strict=True):
        for v in versions:
            _plot_series(
                ax,
                v.points_in(mode),
                lambda p: p.target,
                lambda p: p.queue_ms,
                colour(v),
                v.name if ax is axes[0] else None,
            )
        ax.set_title(f"{mode} loop")
        ax.set_xlabel(load_unit(mode))
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
    axes[0].set_ylabel("mean queueing delay ms (server)")
    _legend(fig, axes[0])
    return fig


def size_per_version(versions: list[VersionSummary], colour: _Palette) -> Figure | None:
    sized = [v for v in versions if v.size_bytes]
    if not sized:
        return None
    fig = new_figure(HALF, 1.0 + 0.42 * len(sized))
    ax = fig.subplots()
    names = [v.name for v in sized]
    mb = [(v.size_bytes or 0) / 1e6 for v in sized]
    ax.barh(range(len(sized)), mb, color=[colour(v) for v in sized])
    ax.set_yticks(range(len(sized)), names)
    ax.invert_yaxis()
    by_key = {v.key: v for v in versions}
    for i, v in enumerate(sized):
        ref = by_key.get(v.reference) if v.reference else None
        text = f"{mb[i]:.2f} MB"
        if ref is not None and ref.size_bytes:
            text += f"  ({fmt_ratio((v.size_bytes or 0) / ref.size_bytes)} of {ref.name})"
        ax.annotate(text, (mb[i], i), textcoords="offset points", xytext=(4, -3), fontsize=8)
    ax.set_xlim(0, max(mb) * 1.45)
    ax.set_xlabel("size on disk, MB")
    ax.grid(axis="y", visible=False)
    return fig


def accuracy_vs_speed(versions: list[VersionSummary], colour: _Palette) -> Figure | None:
    rows = []
    for v in versions:
        share = agreement_share(v)
        if v.slo is not None:
            speed = v.slo.max_rps if v.slo.met else 0.0
        else:
            best = v.best_trusted_rps
            speed = best.rps if best else None
        if share is not None and speed is not None:
            rows.append((v, speed, share * 100))
    if not any(v.reference is not None for v, _, _ in rows):
        return None  # the reference alone: nothing to trade off
    fig = new_figure(HALF, 3.6)
    ax = fig.subplots()
    # Labels beside the points (no legend), alternating above and below so that versions
    # with the same agreement (often 100%) do not print over each other.
    for i, (v, speed, share) in enumerate(sorted(rows, key=lambda r: r[1])):
        ax.plot([speed], [share], marker="o", markersize=8, color=colour(v), linestyle="none")
        ax.annotate(
            v.name,
            (speed, share),
            textcoords="offset points",
            xytext=(6, 6 if i % 2 == 0 else -13),
            fontsize=8,
            color=colour(v),
        )
    frontier, best_share = [], -1.0
    for _, speed, share in sorted(rows, key=lambda r: (-r[1], -r[2])):
        if share > best_share:
            frontier.append((speed, share))
            best_share = share
    if len(frontier) > 1:
        xs, ys = zip(*sorted(frontier), strict=True)
        ax.step(
            xs,
            ys,
            where="post",
            color=SLO,
            linestyle="--",
            linewidth=1,
            alpha=0.7,
            label="Pareto front",
        )
    slo = next((v.slo for v in versions if v.slo is not None), None)
    ax.set_xlabel(
        f"max req/s under SLO {fmt_slo(slo.slo_ms)} (0: never met)"
        if slo
        else "max req/s on a clean step (no SLO set)"
    )
    ax.set_ylabel("agreement with reference %")
    low = min(share for _, _, share in rows)
    ax.set_ylim(max(0.0, low - max(2.0, (100 - low) * 0.3)), 100.8)
    ax.set_xlim(left=0, right=max(s for _, s, _ in rows) * 1.25 or 1.0)
    _legend(fig, ax)
    return fig


def open_loop_correction(versions: list[VersionSummary], colour: _Palette) -> Figure | None:
    if not any(p.uncorrected_p99 is not None for v in versions for p in v.points_in("open")):
        return None
    fig = new_figure(HALF, 3.6)
    ax = fig.subplots()
    values: list[float] = []
    for v in versions:
        points = v.points_in("open")
        _plot_series(
            ax, points, lambda p: p.target, lambda p: p.p99, colour(v), f"{v.name} corrected"
        )
        _plot_series(
            ax,
            points,
            lambda p: p.target,
            lambda p: p.uncorrected_p99,
            colour(v),
            f"{v.name} uncorrected",
            ":",
        )
        values += [x for p in points for x in (p.p99, p.uncorrected_p99) if x is not None]
    _log_if_wide(ax, values)
    ax.set_xlim(left=0)
    ax.set_xlabel("offered req/s (open loop)")
    ax.set_ylabel("p99 latency ms")
    _legend(fig, ax)
    return fig


Builder = Callable[[list[VersionSummary], _Palette], Figure | None]

#: kind -> (builder, title, caption, why it may be missing)
CHART_KINDS: dict[str, tuple[Builder, str, str, str]] = {
    "latency-vs-load": (
        latency_vs_load,
        "Latency percentiles vs load",
        (
            "p50 / p90 / p99 / p99.9 per version against concurrency (closed loop) or offered rate "
            "(open loop; latency from the scheduled send time)."
        ),
        "no measured steps",
    ),
    "throughput-vs-concurrency": (
        throughput_vs_concurrency,
        "Throughput vs concurrency",
        "Achieved req/s per closed-loop concurrency; bars are 95% intervals.",
        "no closed-loop steps",
    ),
    "p99-vs-throughput": (
        p99_vs_throughput,
        "p99 vs throughput",
        (
            "Each version's p99 against the req/s it achieved; dotted line: the SLO; stars: each "
            "version's max req/s under the SLO."
        ),
        "no measured steps",
    ),
    "batch-sizes": (
        batch_sizes,
        "Server batch sizes",
        (
            "Share of the batches the server formed, by size after padding (dark bars), and the "
            "padding rows each batch carried (light bars); server metric deltas over the "
            "version's steps."
        ),
        "no server batching metrics (batching off, or no metrics endpoint scraped)",
    ),
    "queueing-vs-load": (
        queueing_vs_load,
        "Queueing delay vs load",
        "Mean time a request waited in the server's batching queue, per load.",
        "no server queueing metrics (batching off, or no metrics endpoint scraped)",
    ),
    "size": (size_per_version, "Size per version", "SavedModel size on disk.", "no sizes recorded"),
    "accuracy-vs-speed": (
        accuracy_vs_speed,
        "Accuracy vs speed (Pareto view)",
        (
            "Output agreement with the reference against max throughput; the dashed step is the "
            "Pareto front (no version is both faster and more accurate than a point on it)."
        ),
        "no version has both an agreement figure and a throughput figure",
    ),
    "open-loop-correction": (
        open_loop_correction,
        "Open loop: corrected vs uncorrected p99",
        (
            "p99 timed from the scheduled send (coordinated omission corrected, solid) and from the "
            "actual send (dotted); a gap means the generator fell behind its schedule."
        ),
        "no open-loop steps",
    ),
}


def model_charts(report: ComparisonReport, model: str) -> list[Chart]:
    """Every chart of one model, in the order of :data:`CHART_KINDS`."""
    versions = report.of_model(model)
    colour = _Palette(report)
    charts = []
    for kind, (build, title, caption, missing) in CHART_KINDS.items():
        with chart_style():
            fig = build(versions, colour)
            svg = figure_svg(fig, f"{model}: {title}") if fig is not None else None
        charts.append(Chart(kind, model, title, caption, svg, "" if svg else missing))
    return charts
