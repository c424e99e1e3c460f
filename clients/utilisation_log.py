"""``--log-utilisation FILE``: seed 001's utilisation log (it ran ``nvidia-smi`` in a thread).

The sampler of the offline benchmark (:class:`~tfsuite.loadtest.offline.utilisation.UtilisationSampler`:
GPU through NVML where present, CPU through psutil) samples every second in its thread; each
sample is stamped with its time since the start, and the samples go to a CSV when the run ends.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from tfsuite.atomic import atomic_write_text
from tfsuite.loadtest.offline.utilisation import UtilisationSampler

__all__ = ["CSV_COLUMNS", "UtilisationLog"]

CSV_COLUMNS = ("t_s", "cpu_system_pct", "cpu_process_pct", "gpu_util_pct", "gpu_mem_mb")


class UtilisationLog(UtilisationSampler):
    """``with UtilisationLog(path) as log: ...``; then ``log.summary`` (means) and the CSV."""

    def __init__(self, path: Path | None, interval: float = 1.0) -> None:
        super().__init__(interval=interval)
        self.path = path
        self._t0 = time.perf_counter()

    def __enter__(self) -> Self:
        self._t0 = time.perf_counter()
        super().__enter__()
        return self

    def _sample(self) -> None:
        super()._sample()
        self.summary.raw[-1]["t_s"] = round(time.perf_counter() - self._t0, 3)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        super().__exit__(exc_type, exc, tb)
        if self.path is not None:
            out = io.StringIO()
            writer = csv.DictWriter(out, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.summary.raw)
            atomic_write_text(self.path, out.getvalue())
