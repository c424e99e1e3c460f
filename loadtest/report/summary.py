"""What the report knows about each series: the version's facts, its load points, its
SLO result and the batches the server formed for it — everything the recommendation,
the charts and the tables read, computed once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tfsuite.loadtest.report.confidence import Interval
from tfsuite.loadtest.report.formatting import fmt_load, fmt_ms, fmt_rps
from tfsuite.loadtest.report.points import LoadPoint, load_points, merge_histograms
from tfsuite.loadtest.report.runs import Run, VersionKey, measured_steps
from tfsuite.loadtest.results import Agreement, HistogramDelta, Mode, VersionInfo

__all__ = ["ComparisonReport", "SloOutcome", "VersionSummary"]


@dataclass(frozen=True)
class SloOutcome:
    """The highest load one version kept p99 under the SLO at (or that it never did)."""

    slo_ms: float
    met: bool
    mode: Mode | None = None
    max_target: float | None = None
    max_rps: float | None = None
    p99_ms: float | None = None
    rps_interval: Interval | None = None
    source: str = "search"
    """'search': the engine's SLO search (results.slo); 'steps': read off the measured steps."""
    warning: str = ""
    """Why the figure may mislead (a search whose probes contradict each other)."""
    trusted: bool | None = None
    """Whether the step at ``max_target`` was stable and not client-bound (None: a search
    probe, not among the measured steps)."""


@dataclass
class VersionSummary:
    key: VersionKey
    run: Run
    name: str
    info: VersionInfo | None
    reference: VersionKey | None
    points: list[LoadPoint] = field(default_factory=list)
    slo: SloOutcome | None = None
    processed_batch: HistogramDelta | None = None
    padding: HistogramDelta | None = None

    @property
    def size_bytes(self) -> int | None:
        return self.info.size_bytes if self.info else None

    @property
    def agreement(self) -> Agreement | None:
        return self.info.agreement if self.info else None

    def points_in(self, mode: Mode) -> list[LoadPoint]:
        return [p for p in self.points if p.mode == mode]

    def point_at(self, mode: Mode, target: float) -> LoadPoint | None:
        return next((p for p in self.points if p.mode == mode and p.target == target), None)

    @property
    def best_trusted_rps(self) -> LoadPoint | None:
        """The highest-throughput stable, not client-bound point (any mode)."""
        trusted = [p for p in self.points if p.trusted]
        return max(trusted, key=lambda p: p.rps, default=None)


def _non_monotonic(probes: list[dict[str, float]], slo_ms: float, mode: Mode) -> str:
    """'' when every probe under the SLO is at a lower load than every probe over it; else
    the first pair that breaks that (a lighter load missing, a heavier one meeting it)."""
    ordered = sorted(probes, key=lambda p: p.get("target", 0.0))
    for i, light in enumerate(ordered):
        if not light.get("p99_ms", 0.0) <= slo_ms:  # NaN counts as a miss
            for heavy in ordered[i + 1 :]:
                if heavy.get("p99_ms", float("inf")) <= slo_ms:
                    return (
                        f"p99 {fmt_ms(light['p99_ms'])} ms at {fmt_load(mode, light['target'])} "
                        f"but {fmt_ms(heavy['p99_ms'])} ms at {fmt_load(mode, heavy['target'])}"
                    )
    return ""


def _from_steps(summary: VersionSummary, slo_ms: float) -> LoadPoint | None:
    """The highest-throughput measured point that met the SLO cleanly (stable, not
    client-bound, no errors)."""
    under = [
        p
        for p in summary.points
        if p.trusted and not p.errors and p.p99 is not None and p.p99 <= slo_ms
    ]
    return max(under, key=lambda p: p.rps, default=None)


def _slo_outcome(run: Run, summary: VersionSummary) -> SloOutcome | None:
    slo_ms = run.results.run.slo_p99_ms
    if slo_ms is None:
        return None
    key = summary.key
    searched = [s for s in run.results.slo if s.model == key.model and s.version == key.version]
    measured = _from_steps(summary, slo_ms)
    met = [s for s in searched if s.max_target is not None and s.max_rps_under_slo is not None]
    best = max(met, key=lambda s: s.max_rps_under_slo or 0.0, default=None)
    warning = next(
        (f"{s.mode}-loop SLO search not monotonic ({w})" for s in searched
         if (w := _non_monotonic(s.probes, slo_ms, s.mode))),
        "",
    )  # fmt: skip
    if best is not None and (measured is None or (best.max_rps_under_slo or 0) >= measured.rps):
        assert best.max_target is not None
        point = summary.point_at(best.mode, best.max_target)
        return SloOutcome(
            slo_ms,
            True,
            best.mode,
            best.max_target,
            best.max_rps_under_slo,
            best.p99_ms_at_max,
            point.rps_interval if point else None,
            warning=warning,
            trusted=point.trusted if point else None,
        )
    if measured is None:
        return SloOutcome(
            slo_ms,
            False,
            searched[0].mode if searched else None,
            source="search" if searched else "steps",
            warning=warning,
        )
    if searched:
        # A measured step met the SLO at more req/s than the search's answer: the search was
        # misled by noise. Report the measured figure, and say so.
        found = fmt_rps(best.max_rps_under_slo) if best else "none"
        warning = "; ".join(
            w for w in (warning, f"a measured step beat the search's answer ({found} req/s)") if w
        )
    return SloOutcome(
        slo_ms,
        True,
        measured.mode,
        measured.target,
        measured.rps,
        measured.p99,
        measured.rps_interval,
        source="steps",
        warning=warning,
        trusted=True,
    )


def _summaries(run: Run) -> list[VersionSummary]:
    points = load_points(run)
    keys: list[tuple[str, int]] = []
    for info in run.results.versions:
        keys.append((info.model, info.version))
    for step in measured_steps(run.results):
        if (step.model, step.version) not in keys:
            keys.append((step.model, step.version))
    lowest: dict[str, int] = {}
    for model, version in keys:
        lowest[model] = min(version, lowest.get(model, version))
    summaries = []
    for model, version in keys:
        info = run.version_info(model, version)
        if info is not None and info.agreement is not None:
            ref = info.agreement.reference_version
        else:
            ref = lowest[model]
        key = run.key(model, version)
        summary = VersionSummary(
            key,
            run,
            run.series_name(model, version),
            info,
            None if ref == version else run.key(model, ref),
            [p for p in points if p.key == key],
        )
        steps = [p for point in summary.points for p in point.steps]
        summary.processed_batch = merge_histograms(
            s.server.processed_batch_size if s.server else None for s in steps
        )
        summary.padding = merge_histograms(
            s.server.padding_size if s.server else None for s in steps
        )
        summary.slo = _slo_outcome(run, summary)
        summaries.append(summary)
    return summaries


@dataclass
class ComparisonReport:
    """Everything one report shows, built from one or more runs."""

    runs: list[Run]
    versions: dict[VersionKey, VersionSummary]

    @classmethod
    def build(cls, runs: Sequence[Run]) -> ComparisonReport:
        versions: dict[VersionKey, VersionSummary] = {}
        for run in runs:
            for summary in _summaries(run):
                versions[summary.key] = summary
        return cls(list(runs), versions)

    @property
    def models(self) -> list[str]:
        seen: list[str] = []
        for key in self.versions:
            if key.model not in seen:
                seen.append(key.model)
        return seen

    def of_model(self, model: str) -> list[VersionSummary]:
        return [v for k, v in self.versions.items() if k.model == model]

    @property
    def incomplete(self) -> list[Run]:
        return [r for r in self.runs if not r.results.run.complete]

    @property
    def merged(self) -> bool:
        return len(self.runs) > 1
