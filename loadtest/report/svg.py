"""matplotlib figures as inline SVG that follow the page's light or dark theme.

Figures are drawn with sentinel colours for text, grid, background and the SLO line; the
SVG text then gets ``var(--fg)`` etc. in their place, so one SVG reads well under either
``prefers-color-scheme`` (the page defines the variables). Text stays text
(``svg.fonttype: none``): smaller files, selectable, searchable, the page's font.
Series colours are mid-luminance (Tableau 10), legible on white and on near-black.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib as mpl
from matplotlib.figure import Figure

__all__ = [
    "SERIES_COLOURS",
    "THEME",
    "chart_style",
    "figure_svg",
    "new_figure",
    "series_colour",
]

#: sentinel colour -> the page's CSS variable
THEME = {
    "#010101": "var(--fg)",
    "#020202": "var(--grid)",
    "#030303": "var(--bg)",
    "#040404": "var(--slo)",
    "#050505": "var(--muted)",
}
FG, GRID, BG, SLO, MUTED = THEME

SERIES_COLOURS = (
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1",
    "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip

_STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": None,
    "font.family": ["DejaVu Sans", "sans-serif"],
    "font.size": 9.0,
    "text.color": FG,
    "axes.labelcolor": FG,
    "axes.edgecolor": MUTED,
    "axes.facecolor": "none",
    "axes.grid": True,
    "axes.axisbelow": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 9.5,
    "grid.color": GRID,
    "grid.linewidth": 0.6,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "xtick.labelcolor": FG,
    "ytick.labelcolor": FG,
    "figure.facecolor": "none",
    "legend.frameon": True,
    "legend.facecolor": BG,
    "legend.edgecolor": GRID,
    "legend.framealpha": 0.85,
    "legend.fontsize": 8.0,
    "lines.linewidth": 1.6,
    "lines.markersize": 4.5,
}

_PREAMBLE = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_SENTINEL = re.compile("|".join(re.escape(c) for c in THEME), re.IGNORECASE)


def series_colour(index: int) -> str:
    return SERIES_COLOURS[index % len(SERIES_COLOURS)]


@contextmanager
def chart_style() -> Iterator[None]:
    """The report's matplotlib style; build *and* save a figure inside it (matplotlib reads
    some settings when artists are made, others when they are drawn)."""
    with mpl.rc_context(_STYLE):
        yield


def new_figure(width: float = 7.6, height: float = 3.4) -> Figure:
    """A figure without pyplot: no global state, no GUI backend, safe in any thread."""
    return Figure(figsize=(width, height), layout="constrained")


def figure_svg(fig: Figure, title: str) -> str:
    """The figure as an ``<svg>`` element for inlining: no XML preamble, themed colours,
    an accessible title, scalable (the page sets its width)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = _PREAMBLE.sub("", buffer.getvalue(), count=1)
    text = _SENTINEL.sub(lambda m: THEME[m.group(0).lower()], text)
    text = text.replace("<svg ", f'<svg role="img" aria-label="{_attr(title)}" ', 1)
    return text.strip()


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
