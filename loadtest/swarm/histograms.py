"""Microsecond latency histograms per Locust entry, merged losslessly across workers.

Locust keeps its own response times rounded to whole milliseconds below 100 ms (and
coarser above), which hides the sub-millisecond differences between variants. The
:class:`EntryHistograms` listener records every ``events.request`` into an HdrHistogram of
its entry (1 us .. 60 s, 3 significant digits: :class:`~tfsuite.loadtest.stats.LatencyHistogram`),
keyed by load-shape stage and entry name, with the failures counted by gRPC code.

On a worker, :meth:`EntryHistograms.take_report` is called from ``events.report_to_master``:
it hands over what was recorded since the last report, encoded, and starts afresh, so the
master (``events.worker_report`` -> :meth:`EntryHistograms.merge_report`) adds each
interval exactly once. Locust sends its own statistics in the same message, so the merged
histogram count equals Locust's request count.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tfsuite.loadtest.stats import LatencyHistogram

__all__ = ["REPORT_KEY", "EntryHistograms", "EntryRecord"]

#: The key of this listener's data in Locust's worker -> master report.
REPORT_KEY = "tfsuite_hdr"


@dataclass
class EntryRecord:
    """One (stage, entry): its latency histogram and its failures by code."""

    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    errors_by_code: Counter[str] = field(default_factory=Counter)
    version_mismatches: int = 0
    """Answers served by another version than the entry's (``model_spec.version``)."""

    def add(self, other: EntryRecord) -> None:
        self.histogram.add(other.histogram)
        self.errors_by_code.update(other.errors_by_code)
        self.version_mismatches += other.version_mismatches


def error_code(exception: BaseException | None) -> str | None:
    """'NOT_FOUND', ... for the suite's client errors; the type name for anything else."""
    if exception is None:
        return None
    code = getattr(exception, "code", None)
    return getattr(code, "name", None) or type(exception).__name__


class EntryHistograms:
    """``events.request`` listener: (stage, entry name) -> :class:`EntryRecord`."""

    def __init__(self) -> None:
        self.stage = 0
        """The load-shape stage requests are attributed to (set by the stage broadcast)."""
        self.records: dict[tuple[int, str], EntryRecord] = {}
        self._pending: dict[tuple[int, str], EntryRecord] = {}
        self.sent: Counter[str] = Counter()
        """Requests handed to the master so far, per entry (a worker logs it at the end)."""
        self.expected_versions: dict[str, int] = {}
        """Entry name -> the version that should answer it (set when the plan is known)."""

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float,
        exception: BaseException | None = None,
        context: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        """Locust's ``events.request`` signature (``response_time`` in ms, as a float)."""
        key = (self.stage, name)
        record = self._pending.get(key)
        if record is None:
            record = self._pending[key] = EntryRecord()
        record.histogram.record_ms(response_time)
        code = error_code(exception)
        if code is not None:
            record.errors_by_code[code] += 1
        replied = (context or {}).get("reply_version")
        if replied is not None and replied != self.expected_versions.get(name, replied):
            record.version_mismatches += 1

    # -- local runs: the pending records are the result ------------------------------------
    def settle(self) -> dict[tuple[int, str], EntryRecord]:
        """Fold the pending records into :attr:`records` and return them."""
        for key, record in self._pending.items():
            self.records.setdefault(key, EntryRecord()).add(record)
        self._pending = {}
        return self.records

    def reset(self) -> None:
        """Forget the last test (the master and local runner, at each test start)."""
        self.records = {}
        self._pending = {}

    # -- distributed runs --------------------------------------------------------------------
    def take_report(self) -> dict[str, Any]:
        """What a worker sends since its last report (then forgets it)."""
        out: dict[str, Any] = {}
        for (stage, name), record in self._pending.items():
            out[f"{stage}|{name}"] = {
                "hdr": record.histogram.encode(),
                "clamped": record.histogram.clamped,
                "errors": dict(record.errors_by_code),
                "mismatches": record.version_mismatches,
            }
            self.sent[name] += record.histogram.count
        self._pending = {}
        return out

    def merge_report(self, report: dict[str, Any]) -> None:
        """The master adds one worker report (lossless: HdrHistogram decode_and_add)."""
        for key, item in report.items():
            stage, _, name = key.partition("|")
            record = self.records.setdefault((int(stage), name), EntryRecord())
            record.histogram.add_encoded(item["hdr"])
            record.histogram.clamped += int(item.get("clamped", 0))
            record.errors_by_code.update({k: int(v) for k, v in item.get("errors", {}).items()})
            record.version_mismatches += int(item.get("mismatches", 0))

    def by_entry(self) -> dict[str, EntryRecord]:
        """Every stage folded together, per entry name."""
        out: dict[str, EntryRecord] = {}
        for (_, name), record in sorted(self.settle().items()):
            out.setdefault(name, EntryRecord()).add(record)
        return out
