"""``tfsuite report RESULTS.json... --out DIR``: re-render one run, or merge several."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["report"]


@click.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("report"),
    show_default=True,
    help="Directory for report.html and report.md (created if missing).",
)
def report(results: tuple[Path, ...], out_dir: Path) -> None:
    """Render results.json files into one report.html + report.md.

    Several files are merged into one report (e.g. a CPU run beside a GPU run, or a Locust
    run beside a compare run); their versions stay apart, keyed by (run, model, version).
    """
    from rich.console import Console

    from tfsuite.loadtest.report.runs import load_runs
    from tfsuite.loadtest.report.writer import check_output_dir, write_report

    runs = load_runs(results)
    check_output_dir(out_dir)  # before any chart is drawn
    console = Console()
    with console.status(f"rendering {len(runs)} run(s)"):
        files = write_report(runs, out_dir)
    for line in files.recommendation:
        prefix = "→ " if line.kind == "verdict" else "  "
        console.print(prefix + line.text, markup=False, highlight=False, soft_wrap=True)
    console.print(
        f"report: {files.html}  {files.markdown}", markup=False, highlight=False, soft_wrap=True
    )
