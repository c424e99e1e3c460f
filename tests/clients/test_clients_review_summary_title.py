"""The detect/classify summary table keeps its title on one line."""

from __future__ import annotations

import io

from rich.console import Console

from tfsuite.clients.pipeline import RunSummary, print_summary


def test_summary_title_is_not_wrapped() -> None:
    out = io.StringIO()
    console = Console(file=out, width=120, color_system=None)
    title = "detect: ssd_mobilenet_v2_tiny (label weight_quant, gRPC)"
    summary = RunSummary(total=2, images=2, requests=2, latencies_ms=[10.0, 12.0], wall_s=0.5)
    print_summary(summary, console, title)
    lines = out.getvalue().splitlines()
    assert lines[0].strip() == title
    assert any("images/s" in line and "4.0" in line for line in lines)
