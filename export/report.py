"""User-facing output of an export: a rich progress display and the final table."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from tfsuite.export.manifest import VariantRecord, VariantsManifest

__all__ = [
    "StepProgress",
    "format_size",
    "print_summary",
    "reasons",
    "validation_summary",
    "variants_table",
]

log = logging.getLogger(__name__)


def format_size(size: int | None) -> str:
    """Bytes for people: ``3.6 MiB`` (binary units, since it divides by 1024); ``-`` for none."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def validation_summary(record: VariantRecord) -> str:
    """The column a user scans: the gating metric first, then the largest error."""
    val = record.validation
    if val is None:
        return "-"
    parts = []
    if val.detection_agreement is not None:
        parts.append(f"det {val.detection_agreement:.0%}")
    if val.top1_agreement is not None:
        parts.append(f"top1 {val.top1_agreement:.0%}")
    if val.max_rel_error is not None:
        parts.append(f"rel {val.max_rel_error:.2g}")
    return " ".join(parts) or ("ok" if val.passed else val.detail)


def variants_table(manifest: VariantsManifest) -> Table:
    """version, variant, status, size, size ratio, validation error, time (one row a variant)."""
    base = manifest.by_variant("original")
    base_size = base.size_bytes if base and base.size_bytes else None
    table = Table(title=f"{manifest.model_name} ({manifest.kind}, {manifest.source_format})")
    for column in ("version", "variant", "status", "size", "ratio", "validation", "time"):
        table.add_column(
            column,
            justify="right" if column in {"version", "size", "ratio", "time"} else "left",
            no_wrap=column != "validation",
        )
    colour = {"ok": "green", "skipped": "yellow", "failed": "red"}
    for rec in manifest.variants:
        ratio = f"{rec.size_bytes / base_size:.2f}x" if rec.size_bytes and base_size else "-"
        seconds = f"{rec.conversion_seconds:.1f}s" if rec.conversion_seconds is not None else "-"
        status = f"[{colour[rec.status]}]{rec.status}[/]"
        table.add_row(
            str(rec.version),
            rec.variant,
            status,
            format_size(rec.size_bytes),
            ratio,
            validation_summary(rec),
            seconds,
        )
    return table


class StepProgress:
    """A spinner line per step; silent when disabled (API callers, tests)."""

    def __init__(self, enabled: bool, console: Console | None = None) -> None:
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None

    @contextmanager
    def running(self) -> Iterator[StepProgress]:
        if not self.enabled:
            yield self
            return
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        with self._progress:
            yield self
        self._progress = None

    @contextmanager
    def step(self, description: str) -> Iterator[None]:
        if self._progress is None:
            yield
            return
        task = self._progress.add_task(description, total=1)
        try:
            yield
        finally:
            self._progress.update(task, completed=1)

    def note(self, text: str) -> None:
        """Tell the user what was chosen: on the console when enabled, else to the log."""
        if self.enabled:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            log.info("%s", text)


def reasons(manifest: VariantsManifest) -> list[str]:
    """One line per distinct skip/fail reason, naming the versions it applies to."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for rec in manifest.variants:
        if rec.status != "ok" and rec.reason:
            grouped.setdefault((rec.status, rec.reason), []).append(
                f"{rec.version} ({rec.variant})"
            )
    return [
        f"{status}: version{'s' if len(v) > 1 else ''} {', '.join(v)}: {reason}"
        for (status, reason), v in grouped.items()
    ]


def print_summary(manifest: VariantsManifest, console: Console | None = None) -> None:
    """The final table, then why anything was skipped or failed."""
    console = console or Console()
    console.print(variants_table(manifest))
    for line in reasons(manifest):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
