"""The online measurement engine behind ``tfsuite compare``.

Modules: ``load`` (the closed-loop ConcurrencyManager and the open-loop RequestRateManager,
schedules fixed in advance), ``recorder`` (the call-hook listener filing each call into
HdrHistogram windows), ``profiler`` (one step: warm-up, windows, stability, client-bound
detection, server deltas), ``sweep`` (versions x targets x repeats, SLO search, agreement,
load cost: :func:`run_compare`), ``embedded`` (the embedded server in its own process),
``output`` (results.json / results.csv / tables), ``cli`` (``tfsuite compare``).

    from tfsuite.loadtest.online import CompareOptions, run_compare

Names resolve on first use (PEP 562).
"""

from __future__ import annotations

from tfsuite.lazy_exports import lazy_exports

_EXPORTS: dict[str, str] = {
    "CompareOptions": "sweep",
    "StepPlan": "profiler",
    "StepSettings": "profiler",
    "measure_step": "profiler",
    "run_compare": "sweep",
}

__all__ = ["CompareOptions", "StepPlan", "StepSettings", "measure_step", "run_compare"]


__getattr__ = lazy_exports(__name__, _EXPORTS)
