"""The runs a report shows: one or several ``results.json`` files, checked and labelled.

A merged report keys every version by (run, model, version): the same model measured on
a CPU machine and on a GPU machine, or by ``tfsuite compare`` and by Locust, stays two
series. A single run has the empty run label, so its series read "v2 weight_quant".
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tfsuite.loadtest.results import Results, ResultsError, Step, VersionInfo, load_results

__all__ = ["Run", "VersionKey", "load_runs", "measured_steps"]


@dataclass(frozen=True, order=True)
class VersionKey:
    """One series of the report."""

    run: str
    model: str
    version: int


@dataclass(frozen=True)
class Run:
    """One results file, with the label its series carry in a merged report."""

    label: str
    path: Path
    results: Results

    @property
    def title(self) -> str:
        info = self.results.run
        where = info.machine.gpu or f"{info.machine.cores} CPU cores"
        name = f"run {self.label}: " if self.label else ""
        return f"{name}{info.tool} on {info.machine.hostname or 'unknown host'} ({where})"

    def key(self, model: str, version: int) -> VersionKey:
        return VersionKey(self.label, model, version)

    def version_info(self, model: str, version: int) -> VersionInfo | None:
        for info in self.results.versions:
            if info.model == model and info.version == version:
                return info
        return None

    def series_name(self, model: str, version: int) -> str:
        """What a chart legend and a table call this version: 'B v2 weight_quant'."""
        info = self.version_info(model, version)
        variant = (info.variant or info.label) if info else None
        if variant is None:
            variant = next(
                (s.label for s in self.results.steps if s.model == model and s.version == version),
                None,
            )
        name = f"v{version}" + (f" {variant}" if variant else "")
        return f"{self.label} {name}" if self.label else name


def measured_steps(results: Results) -> list[Step]:
    """The steps that ran (a skipped step carries only its reason)."""
    return [s for s in results.steps if not s.skipped and s.requests > 0]


def _labels(count: int) -> list[str]:
    if count == 1:
        return [""]
    letters = string.ascii_uppercase
    return [letters[i] if i < len(letters) else f"R{i + 1}" for i in range(count)]


def load_runs(paths: Sequence[Path | str]) -> list[Run]:
    """Read every file (:func:`load_results` names a missing key in one line); an empty run
    (no step that measured anything) is an error too, since there is nothing to report."""
    if not paths:
        raise ResultsError("no results.json given")
    runs = []
    for label, path in zip(_labels(len(paths)), paths, strict=True):
        results = load_results(path)
        if not measured_steps(results):
            skipped = sum(1 for s in results.steps if s.skipped)
            detail = f" ({skipped} skipped)" if skipped else ""
            raise ResultsError(
                f"{path}: empty run: no measured steps{detail}; nothing to report "
                "(re-run the measurement)"
            )
        runs.append(Run(label, Path(path), results))
    return runs
