"""The bench matrix: targets (model variants) x backends x batch sizes -> one CaseResult each.

A case that cannot run is recorded (``failed`` with the first line of the error and its log
path, or ``skipped`` with the reason) and the matrix goes on. Results are handed to
``on_result`` as soon as each case finishes, so a caller can write tables incrementally and an
interrupted run keeps every finished row.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfsuite.loadtest.offline.backends import BACKENDS, Backend, OnnxRuntimeBackend
from tfsuite.loadtest.offline.inputs import synthetic_inputs
from tfsuite.loadtest.offline.measure import measure
from tfsuite.loadtest.offline.stats import LatencyStats, summarise
from tfsuite.loadtest.offline.targets import BenchTarget, VariantFacts
from tfsuite.loadtest.offline.trace import case_trace, write_trace
from tfsuite.loadtest.offline.utilisation import UtilisationSampler, UtilisationSummary

__all__ = ["BenchSettings", "CaseResult", "case_id", "run_matrix"]

log = logging.getLogger(__name__)
CASE_LOGGER = "tfsuite.loadtest.bench.case"


@dataclass
class BenchSettings:
    """How every case is run."""

    out: Path
    """Output directory (tables, traces/, logs/, onnx/)."""
    batch_sizes: list[int]
    backends: list[str] = field(default_factory=lambda: ["tf"])
    warmup: int = 30
    """Untimed iterations before measuring (seed 000: --num_warmup_iterations 30)."""
    iterations: int | None = 100
    """Timed iterations; ignored when duration_s is set."""
    duration_s: float | None = None
    """Measure for this long instead of a fixed iteration count."""
    threads: int | None = None
    """Intra-op threads for every backend (None: the backend's default)."""
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """Overrides for dynamic dims, by input name."""
    seed: int = 0
    """Seed of the synthetic inputs (same seed -> same bytes for every backend)."""
    convert_timeout_s: float | None = None
    """Convert for onnxruntime in a subprocess killed after this long; None: in-process."""
    onnx_spinning: bool = True
    """onnxruntime's idle threads spin (its default); off is kinder to a CPU shared with others."""


@dataclass(kw_only=True)
class CaseResult(VariantFacts):
    """One row of the table (the variant's facts + this case), plus what bench.json keeps."""

    backend: str
    batch_size: int
    status: str
    """``ok``, ``failed`` or ``skipped``."""
    error: str = ""
    """First line of the error (failed) or the reason (skipped)."""
    log_path: str = ""
    trace_path: str = ""
    stats: LatencyStats | None = None
    utilisation: UtilisationSummary | None = None
    backend_conversion_seconds: float | None = None
    """Time this backend spent converting the variant (tf2onnx), 0 when cached."""
    latencies_ns: list[int] = field(default_factory=list)
    backend_details: dict[str, Any] = field(default_factory=dict)

    @property
    def case_id(self) -> str:
        return case_id(self.model, self.variant, self.version, self.backend, self.batch_size)


def case_id(model: str, variant: str, version: int, backend: str, batch_size: int) -> str:
    return f"{model}_{variant}_v{version}_{backend}_b{batch_size}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class _ToConsole(logging.Handler):
    """Warnings and errors of a case still reach the user's console (the root handlers).

    The case's own record of its failure (a full traceback) stays in the case log; the
    console gets the one-line summary from the caller.
    """

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING and record.name != CASE_LOGGER:
            logging.getLogger().handle(record)


@contextmanager
def _case_log(path: Path) -> Iterator[logging.Logger]:
    """Route the bench's, TensorFlow's and tf2onnx's Python logs into the case's own file.

    Info lines go to the file only (they would drown the progress display); warnings also
    reach the console.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    console = _ToConsole()
    # Ours and tf2onnx's: info to the file only, warnings forwarded to the console.
    owned = [logging.getLogger(n) for n in ("tfsuite.loadtest", "tf2onnx")]
    saved = [(lg, lg.level, lg.propagate) for lg in owned]
    for lg in owned:
        lg.addHandler(handler)
        lg.addHandler(console)
        lg.setLevel(logging.INFO)
        lg.propagate = False
    # TensorFlow's logger prints through its own stderr handler; only copy into the file.
    tf_logger = logging.getLogger("tensorflow")
    tf_logger.addHandler(handler)
    try:
        yield logging.getLogger(CASE_LOGGER)
    finally:
        tf_logger.removeHandler(handler)
        for lg, level, propagate in saved:
            lg.removeHandler(handler)
            lg.removeHandler(console)
            lg.setLevel(level)
            lg.propagate = propagate
        handler.close()


class _LoadedBackends:
    """One loaded backend per (target, backend name), reused across batch sizes."""

    def __init__(self, settings: BenchSettings) -> None:
        self.settings = settings
        self._current: tuple[tuple[str, int, str], Backend | BaseException] | None = None

    def get(self, target: BenchTarget, name: str) -> Backend:
        key = (target.model, target.version, name)
        if self._current is None or self._current[0] != key:
            self.release()
            backend = BACKENDS[name](
                target.version_dir,
                model=target.model,
                version=target.version,
                threads=self.settings.threads,
                cache_dir=self.settings.out / "onnx",
                convert_timeout_s=self.settings.convert_timeout_s,
            )
            if isinstance(backend, OnnxRuntimeBackend):
                backend.spinning = self.settings.onnx_spinning
            try:
                backend.load()
                self._current = (key, backend)
            except Exception as exc:
                self._current = (key, exc)
        value = self._current[1]
        if isinstance(value, BaseException):
            raise value
        return value

    def release(self) -> None:
        if self._current is not None and isinstance(self._current[1], Backend):
            self._current[1].close()
        self._current = None


def _run_case(
    target: BenchTarget,
    backend_name: str,
    batch_size: int,
    settings: BenchSettings,
    backends: _LoadedBackends,
    skip_reasons: Mapping[str, str | None],
) -> CaseResult:
    import time

    result = CaseResult(**target.facts(), backend=backend_name, batch_size=batch_size, status="ok")
    log_path = settings.out / "logs" / f"{result.case_id}.log"
    result.log_path = str(log_path)
    with _case_log(log_path) as case_log:
        case_log.info(
            "case %s: %s version %d (%s) on %s, batch %d",
            result.case_id,
            target.model,
            target.version,
            target.variant,
            backend_name,
            batch_size,
        )
        if target.status != "ok":
            result.status, result.error = (
                "skipped",
                f"variant {target.status}: {target.reason}".strip(),
            )
            case_log.info("skipped: %s", result.error)
            return result
        if skip_reasons.get(backend_name):
            result.status, result.error = "skipped", str(skip_reasons[backend_name])
            case_log.info("skipped: %s", result.error)
            return result
        try:
            case_start = time.perf_counter_ns()
            backend = backends.get(target, backend_name)
            result.backend_conversion_seconds = backend.conversion_seconds
            result.backend_details = dict(backend.details)
            feeds = synthetic_inputs(
                backend.inputs, batch_size, settings.input_shapes, seed=settings.seed
            )
            case_log.info("inputs: %s", {k: (v.dtype.name, v.shape) for k, v in feeds.items()})
            prepared = backend.prepare(feeds)
            with UtilisationSampler() as sampler:
                m = measure(
                    lambda: backend.infer(prepared),
                    warmup=settings.warmup,
                    iterations=settings.iterations,
                    duration_s=settings.duration_s,
                )
            case_end = time.perf_counter_ns()
            result.utilisation = sampler.summary
            result.latencies_ns = m.latencies_ns
            result.stats = summarise(m.latencies_ns, batch_size)
            trace = case_trace(
                result.case_id,
                case_start_ns=case_start,
                case_end_ns=case_end,
                warmup_start_ns=m.warmup_start_ns,
                warmup_end_ns=m.warmup_end_ns,
                starts_ns=m.starts_ns,
                latencies_ns=m.latencies_ns,
                batch_size=batch_size,
                extra={
                    "backend": backend_name,
                    "variant": target.variant,
                    "version": target.version,
                },
            )
            result.trace_path = str(
                write_trace(settings.out / "traces" / f"{result.case_id}.json", trace)
            )
            case_log.info("stats: %s", result.stats.to_dict())
            case_log.info(
                "utilisation: cpu process %.0f%%, system %.0f%%",
                result.utilisation.cpu_process_pct or 0,
                result.utilisation.cpu_system_pct or 0,
            )
        except Exception as exc:  # a failing case is a row, never the end of the matrix
            result.status, result.error = "failed", _first_line(exc)
            case_log.error("failed:\n%s", traceback.format_exc())
    return result


def run_matrix(
    targets: Sequence[BenchTarget],
    settings: BenchSettings,
    *,
    on_start: Callable[[str, int, int], None] | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Run every (target, backend, batch size) case in order; returns the results.

    ``on_start(case_id, index, total)`` and ``on_result(result)`` are called around each case.
    A KeyboardInterrupt propagates after the finished results were handed to ``on_result``.
    """
    skip_reasons = {name: BACKENDS[name].unavailable_reason() for name in settings.backends}
    cases = [(t, b, bs) for t in targets for b in settings.backends for bs in settings.batch_sizes]
    backends = _LoadedBackends(settings)
    results: list[CaseResult] = []
    try:
        for index, (target, backend_name, batch_size) in enumerate(cases):
            if on_start is not None:
                on_start(
                    case_id(target.model, target.variant, target.version, backend_name, batch_size),
                    index,
                    len(cases),
                )
            result = _run_case(target, backend_name, batch_size, settings, backends, skip_reasons)
            results.append(result)
            if on_result is not None:
                on_result(result)
    finally:
        backends.release()
    return results
