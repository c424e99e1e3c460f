"""The engine's one recorder: a call-hook listener that files each finished Predict into the
current measurement window (HdrHistograms, error counts, version checks).

The load managers never time anything: the clients' call hook reports every call
(:class:`~tfsuite.clients.hooks.CallEvent`), and an open-loop sender marks the call's
*scheduled* send time in a context variable (:func:`scheduled_send`) before sending, so
the recorder can measure from the schedule (coordinated omission corrected, as wrk2 does)
and from the actual send side by side. Nothing per request is kept: each window is a few
histograms and counters, merged losslessly into the step's figures.
"""

from __future__ import annotations

import contextvars
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

from tfsuite.clients.hooks import CallEvent
from tfsuite.loadtest.stats import LatencyHistogram

__all__ = ["LATE_S", "VERSION_MISMATCH", "StepRecorder", "WindowCounts", "scheduled_send"]

#: A send later than this behind its schedule counts as late.
LATE_S = 0.001
#: The error code a reply from another version than the one asked for is counted under.
VERSION_MISMATCH = "VERSION_MISMATCH"

#: Set by an open-loop sender (per asyncio task) to the call's scheduled send time
#: (``time.perf_counter()`` clock); None in closed loop.
scheduled_send: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "tfsuite_scheduled_send", default=None
)


@dataclass
class WindowCounts:
    """What one measurement window recorded."""

    start: float
    """``perf_counter`` at the window's start."""
    end: float = 0.0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    late: int = 0
    sent_scheduled: int = 0
    """Calls that carried a scheduled send time (open loop)."""
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    """From the scheduled send (open loop) or the actual send (closed loop)."""
    uncorrected: LatencyHistogram = field(default_factory=LatencyHistogram)
    """Open loop: from the actual send."""
    dispatch_lag: LatencyHistogram = field(default_factory=LatencyHistogram)

    @property
    def duration(self) -> float:
        return self.end - self.start

    @cached_property
    def p99_ms(self) -> float | None:
        """The window's p99 (read after the window closed: stability, progress, results)."""
        return self.latency.percentile_ms(99)

    @property
    def completed(self) -> int:
        return self.ok + sum(self.errors.values())

    @property
    def rps(self) -> float:
        return self.ok / self.duration if self.duration > 0 else 0.0


class StepRecorder:
    """Listens on a client's ``call_hooks``; counts only while :attr:`recording`."""

    def __init__(self, expected_version: int | None) -> None:
        self.expected_version = expected_version
        self.recording = False
        self.first_error: str = ""
        """The first error message seen while recording (one line for the report)."""
        self._window = WindowCounts(start=0.0)

    def start(self, now: float) -> None:
        """Begin measuring (the warm-up is over): a fresh window from ``now``."""
        self._window = WindowCounts(start=now)
        self.recording = True

    def roll(self, now: float) -> WindowCounts:
        """Close the current window at ``now`` and open the next one."""
        done = self._window
        done.end = now
        self._window = WindowCounts(start=now)
        return done

    def stop(self) -> None:
        self.recording = False

    def __call__(self, event: CallEvent) -> None:
        if not self.recording or event.method != "Predict":
            return
        window = self._window
        scheduled = scheduled_send.get()
        if scheduled is not None:
            lag = event.started - scheduled
            window.sent_scheduled += 1
            window.dispatch_lag.record_seconds(lag if lag > 0 else 0.0)
            if lag > LATE_S:
                window.late += 1
        if event.exception is not None:
            window.errors[event.code] += 1
            if not self.first_error:
                self.first_error = str(event.exception).splitlines()[0][:300]
            return
        expected = self.expected_version
        if expected is not None and event.reply_version not in (None, expected):
            window.errors[VERSION_MISMATCH] += 1
            if not self.first_error:
                self.first_error = (
                    f"asked for version {expected}, answered by version {event.reply_version}"
                )
            return
        window.ok += 1
        if scheduled is None:
            window.latency.record_seconds(event.seconds)
        else:
            window.latency.record_seconds(event.started + event.seconds - scheduled)
            window.uncorrected.record_seconds(event.seconds)
