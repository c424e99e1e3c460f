"""The runs a report shows: one or several ``results.json`` files, checked and labelled.

A merged report keys every version by (run, model, version): the same model measured on
a CPU machine and on a GPU machine, or by ``tfsuite compare`` and by Locust, stays two
series, "A v1 original" and "B v1 original". Runs that share no model (one per model, as
the demo writes them) need no run letter, so their series read "v2 weight_quant".
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


def _models(results: Results) -> set[str]:
    return {v.model for v in results.versions} | {s.model for s in measured_steps(results)}


def _labels(all_results: Sequence[Results]) -> list[str]:
    """'' for every run when no model is in two of them (the keys are unique anyway and the
    names read 'v2 weight_quant'); else A, B, C, ..."""
    seen: set[str] = set()
    overlap = False
    for results in all_results:
        models = _models(results)
        overlap = overlap or bool(models & seen)
        seen |= models
    if not overlap:
        return [""] * len(all_results)
    letters = string.ascii_uppercase
    return [letters[i] if i < len(letters) else f"R{i + 1}" for i in range(len(all_results))]


def load_runs(paths: Sequence[Path | str]) -> list[Run]:
    """Read every file (:func:`load_results` names a missing key in one line); an empty run
    (no step that measured anything) is an error too, since there is nothing to report."""
    if not paths:
        raise ResultsError("no results.json given")
    loaded = []
    for path in paths:
        results = load_results(path)
        if not measured_steps(results):
            skipped = sum(1 for s in results.steps if s.skipped)
            detail = f" ({skipped} skipped)" if skipped else ""
            raise ResultsError(
                f"{path}: empty run: no measured steps{detail}; nothing to report "
                "(re-run the measurement)"
            )
        loaded.append(results)
    labels = _labels(loaded)
    return [Run(label, Path(path), r) for label, path, r in zip(labels, paths, loaded, strict=True)]
