"""The offline benchmark (``tfsuite bench``) as a library call.

from tfsuite.loadtest.offline import BenchJob, BenchSettings, run_bench, targets_from_base_path

settings = BenchSettings(out=Path("bench"), batch_sizes=[1, 8, 32],
                         backends=["tf", "onnxruntime"])
targets = targets_from_base_path(Path("models/mobilenet_v2"))
report = run_bench([BenchJob(targets, settings)])
report.results  # one CaseResult per model x variant x backend x batch size

"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tfsuite.errors import TFSuiteError
from tfsuite.export.manifest import VariantsManifest
from tfsuite.loadtest.offline.assignment import Assignment, parse_assignment
from tfsuite.loadtest.offline.backends import check_backends, saved_model_inputs
from tfsuite.loadtest.offline.errors import BenchUsageError
from tfsuite.loadtest.offline.inputs import resolve_shape
from tfsuite.loadtest.offline.measure import measure_overhead
from tfsuite.loadtest.offline.report import BenchReport
from tfsuite.loadtest.offline.runner import BenchSettings, CaseResult, run_matrix
from tfsuite.loadtest.offline.targets import BenchTarget, targets_from_base_path

__all__ = [
    "BenchJob",
    "BenchReport",
    "BenchSettings",
    "CaseResult",
    "check_input_shapes",
    "jobs_from_assignment",
    "run_bench",
    "targets_from_base_path",
]

log = logging.getLogger(__name__)


@dataclass
class BenchJob:
    """Targets that share one set of settings (one base path, or one assignment line)."""

    targets: list[BenchTarget]
    settings: BenchSettings

    @property
    def total_cases(self) -> int:
        return len(self.targets) * len(self.settings.backends) * len(self.settings.batch_sizes)


def _export_missing(a: Assignment, out: Path, where: str) -> Path:
    """The base path for an assignment line, exporting the variants it still lacks."""
    if VariantsManifest.load_if_exists(a.source) is not None:
        return a.source  # already an exported base path
    base = out / "models" / a.name
    existing = VariantsManifest.load_if_exists(base)
    have = {v.variant for v in existing.variants} if existing else set()
    missing = [v for v in a.variants if v not in have]
    if missing:
        from tfsuite.export.api import export_variants

        log.info("exporting %s (%s) into %s", a.name, ", ".join(missing), base)
        try:
            export_variants(
                a.source,
                base,
                variants=missing,
                model_name=a.name,
                batch_sizes=tuple(a.batch_sizes),
                progress=False,
            )
        except TFSuiteError as exc:
            raise BenchUsageError(f"{where}: export of {a.source} failed: {exc}") from None
    return base


def jobs_from_assignment(path: Path, defaults: BenchSettings) -> list[BenchJob]:
    """One job per assignment line; exports what is missing into ``<out>/models/<name>``."""
    jobs: list[BenchJob] = []
    for a in parse_assignment(path):
        where = f"{path}:{a.line}"
        backends = a.backends or defaults.backends
        try:
            check_backends(backends)
        except BenchUsageError as exc:
            raise BenchUsageError(f"{where}: {exc}") from None
        base = _export_missing(a, defaults.out, where)
        try:
            targets = targets_from_base_path(base, variants=a.variants, model_name=a.name)
        except BenchUsageError as exc:
            raise BenchUsageError(f"{where}: {exc}") from None
        settings = dataclasses.replace(
            defaults,
            batch_sizes=a.batch_sizes,
            backends=backends,
            input_shapes={**defaults.input_shapes, **a.input_shapes},
        )
        jobs.append(BenchJob(targets, settings))
    return jobs


def check_input_shapes(job: BenchJob) -> None:
    """Fail before the matrix starts when an input's dynamic dims cannot be filled.

    Variants of one base path share a signature, so the first loadable one is checked.
    """
    for target in job.targets:
        if target.status != "ok":
            continue
        specs = target.inputs
        if not specs:
            try:
                specs = saved_model_inputs(target.version_dir)
            except Exception as exc:  # a broken variant is the matrix's business (a failed row)
                log.debug("cannot read inputs of %s: %s", target.version_dir, exc)
                continue
        for spec in specs:
            resolve_shape(spec, job.settings.batch_sizes[0], job.settings.input_shapes)
        return


def run_bench(
    jobs: Sequence[BenchJob],
    *,
    on_start: Callable[[str, int, int], None] | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
) -> BenchReport:
    """Run every job into one report in ``jobs[0].settings.out``; tables are rewritten per case.

    On KeyboardInterrupt the finished rows are kept (tables, bench.json, plot marked
    interrupted) and the interrupt propagates.
    """
    if not jobs:
        raise BenchUsageError("nothing to benchmark")
    for job in jobs:
        check_backends(job.settings.backends)
        check_input_shapes(job)
    threads = jobs[0].settings.threads
    if threads:
        # TensorFlow fixes its thread pools when its runtime starts; set them before anything runs.
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            log.warning(
                "--threads %d not applied to tf: TensorFlow's runtime was already running", threads
            )
    report = BenchReport(jobs[0].settings, overhead_ns=measure_overhead())
    report.job_settings = [job.settings for job in jobs]
    total = sum(j.total_cases for j in jobs)
    done = 0

    def started(case: str, index: int, _total: int) -> None:
        if on_start is not None:
            on_start(case, done + index, total)

    def finished(result: CaseResult) -> None:
        report.add(result)
        if on_result is not None:
            on_result(result)

    try:
        for job in jobs:
            run_matrix(job.targets, job.settings, on_start=started, on_result=finished)
            done += job.total_cases
    except KeyboardInterrupt:
        report.interrupted = True
        report.write_tables()
        report.plot()
        raise
    report.write_tables()
    report.plot()
    return report
