"""CPU (process + system) and, where NVML and a GPU exist, GPU utilisation during a bench case.

Seed 001 logs GPU utilisation while inference runs; here a daemon thread samples psutil every
``interval`` seconds. GPU fields stay ``None`` when ``pynvml`` is not importable or reports no
device, so tables show them as absent instead of as zero.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any

import psutil

__all__ = ["UtilisationSampler", "UtilisationSummary", "gpu_available"]

log = logging.getLogger(__name__)


def _nvml() -> Any | None:
    """The initialised ``pynvml`` module, or None where there is no NVML or no GPU."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        if pynvml.nvmlDeviceGetCount() == 0:
            return None
    except Exception as exc:  # NVML raises its own error types for "no driver"
        log.debug("NVML unavailable: %s", exc)
        return None
    return pynvml


def gpu_available() -> bool:
    return _nvml() is not None


@dataclass
class UtilisationSummary:
    """Means over the samples taken while one case ran."""

    samples: int = 0
    cpu_process_pct: float | None = None
    """This process, in percent of one core (psutil convention: 200 = two cores busy)."""
    cpu_system_pct: float | None = None
    """Whole machine, percent of all cores."""
    gpu_util_pct: float | None = None
    gpu_mem_mb: float | None = None
    """Peak GPU memory used (device 0) during the case."""
    raw: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class UtilisationSampler:
    """``with UtilisationSampler() as s: ...`` then ``s.summary``."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.summary = UtilisationSummary()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process = psutil.Process()
        self._nvml = _nvml()

    def __enter__(self) -> UtilisationSampler:
        # The first cpu_percent() call only sets the reference point.
        self._process.cpu_percent(None)
        psutil.cpu_percent(None)
        self._thread = threading.Thread(target=self._run, name="bench-utilisation", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        # A case shorter than one interval still gets one sample covering its whole run.
        if not self.summary.raw:
            self._sample()
        self._summarise()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        sample = {
            "cpu_process_pct": self._process.cpu_percent(None),
            "cpu_system_pct": psutil.cpu_percent(None),
        }
        if self._nvml is not None:
            try:
                handle = self._nvml.nvmlDeviceGetHandleByIndex(0)
                sample["gpu_util_pct"] = float(self._nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
                sample["gpu_mem_mb"] = self._nvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20
            except Exception as exc:
                log.debug("NVML sample failed: %s", exc)
        self.summary.raw.append(sample)

    def _summarise(self) -> None:
        raw = self.summary.raw
        self.summary.samples = len(raw)

        def mean(key: str) -> float | None:
            values = [s[key] for s in raw if key in s]
            return sum(values) / len(values) if values else None

        self.summary.cpu_process_pct = mean("cpu_process_pct")
        self.summary.cpu_system_pct = mean("cpu_system_pct")
        self.summary.gpu_util_pct = mean("gpu_util_pct")
        mems = [s["gpu_mem_mb"] for s in raw if "gpu_mem_mb" in s]
        self.summary.gpu_mem_mb = max(mems) if mems else None
