"""Chrome-trace (``chrome://tracing`` / Perfetto) timelines of one bench case.

The measurement loop only stores start/duration integers; spans are built afterwards so the
trace costs nothing inside the timed region.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tfsuite.atomic import atomic_write_json

__all__ = ["case_trace", "write_trace"]


def _span(
    name: str, start_ns: int, dur_ns: int, tid: int, cat: str, args: dict[str, Any] | None = None
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "name": name,
        "cat": cat,
        "ph": "X",
        "ts": start_ns / 1e3,  # the trace format counts microseconds
        "dur": max(dur_ns, 0) / 1e3,
        "pid": os.getpid(),
        "tid": tid,
    }
    if args:
        event["args"] = args
    return event


def case_trace(
    case_id: str,
    *,
    case_start_ns: int,
    case_end_ns: int,
    warmup_start_ns: int | None,
    warmup_end_ns: int | None,
    starts_ns: Sequence[int],
    latencies_ns: Sequence[int],
    batch_size: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The trace document for one case: a case span, a warm-up span and one span per iteration."""
    events: list[dict[str, Any]] = [
        {
            "name": "process_name",
            "ph": "M",
            "pid": os.getpid(),
            "tid": 0,
            "args": {"name": f"tfsuite bench {case_id}"},
        },
        {"name": "thread_name", "ph": "M", "pid": os.getpid(), "tid": 1, "args": {"name": "case"}},
        {
            "name": "thread_name",
            "ph": "M",
            "pid": os.getpid(),
            "tid": 2,
            "args": {"name": "iterations"},
        },
        _span(case_id, case_start_ns, case_end_ns - case_start_ns, 1, "case", extra),
    ]
    if warmup_start_ns is not None and warmup_end_ns is not None:
        events.append(
            _span("warmup", warmup_start_ns, warmup_end_ns - warmup_start_ns, 2, "warmup")
        )
    for i, (start, dur) in enumerate(zip(starts_ns, latencies_ns, strict=True)):
        events.append(
            _span(
                f"iteration {i}", start, dur, 2, "iteration", {"step": i, "batch_size": batch_size}
            )
        )
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def write_trace(path: Path, trace: dict[str, Any]) -> Path:
    """Write atomically so an interrupted run never leaves half a trace."""
    return atomic_write_json(path, trace, indent=None)
