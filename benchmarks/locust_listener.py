"""Cost of the suite's Locust reporting path, per request, measured in one run.

Every Predict a Locust user sends goes: client call hook -> :class:`LocustRequests` ->
``events.request`` -> Locust's own statistics listener + the suite's HDR listener
(:class:`EntryHistograms`). Rows:

1. Locust's own statistics listener alone (what every Locust test pays per request);
2. the suite's path: call hook -> events.request -> Locust's listener + the HDR listener;
3. what the suite adds (2 - 1), and that as a share of the fastest request seen in this
   repository's Locust tests (~1 ms over loopback gRPC for a 4-float model): target < 5 %.

In-process, no network: it measures CPU per request, the figure that decides how many
requests one Locust worker can send. Usage: ``.venv/bin/python benchmarks/locust_listener.py``
"""

from __future__ import annotations

import time

from locust.env import Environment  # patches the process with gevent, as Locust runs

# isort: split

import numpy as np
from rich.console import Console
from rich.table import Table

from tfsuite.clients.hooks import CallEvent
from tfsuite.loadtest.request_pool import RequestPool
from tfsuite.loadtest.swarm.histograms import EntryHistograms
from tfsuite.loadtest.swarm.plan import Entry, Plan
from tfsuite.loadtest.swarm.users import LocustRequests

N = 200_000
FASTEST_REQUEST_S = 1e-3


def _per_call(fn, events: list[CallEvent]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for event in events:
            fn(event)
        best = min(best, (time.perf_counter() - started) / len(events))
    return best


def main() -> None:
    rng = np.random.default_rng(0)
    seconds = rng.lognormal(np.log(2e-3), 0.5, N)
    events = [
        CallEvent(
            "grpc", "Predict", "m", 1 + (i % 2), None, 0.0, float(s), 49, 40, None, 1 + (i % 2)
        )
        for i, s in enumerate(seconds)
    ]
    pool = RequestPool("m", [{"x": np.zeros((1, 4), np.float32)}], 1)
    plan = Plan(
        "m",
        [Entry(1, None, "a", 1, "Predict m v1 a"), Entry(2, None, "b", 1, "Predict m v2 b")],
        pool,
        False,
    )

    locust_only = Environment(events=None)
    locust_only.create_local_runner()
    fire = locust_only.events.request.fire

    def bare(event: CallEvent) -> None:
        fire(
            request_type="grpc",
            name="Predict m v1 a",
            response_time=event.seconds * 1e3,
            response_length=event.response_bytes,
            exception=None,
            context={},
        )

    suite = Environment(events=None)
    suite.create_local_runner()
    histograms = EntryHistograms()
    histograms.expected_versions = {"Predict m v1 a": 1, "Predict m v2 b": 2}
    suite.events.request.add_listener(histograms.on_request)
    hook = LocustRequests(suite, plan)

    t_bare = _per_call(bare, events)
    t_suite = _per_call(hook, events)
    added = t_suite - t_bare
    assert sum(r.histogram.count for r in histograms.settle().values()) == 3 * N

    table = Table(title=f"Locust reporting path, per request ({N} requests, best of 3)")
    for col in ("what", "measured", "target"):
        table.add_column(col)
    table.add_row("Locust's statistics listener alone", f"{t_bare * 1e6:.2f} µs", "")
    table.add_row(
        "call hook -> events.request -> Locust + HDR listener", f"{t_suite * 1e6:.2f} µs", ""
    )
    table.add_row("added by the suite", f"{added * 1e6:.2f} µs", "")
    table.add_row(
        "added, share of a 1 ms request",
        f"{100 * added / FASTEST_REQUEST_S:.2f} %",
        "< 5 %",
    )
    Console().print(table)


if __name__ == "__main__":
    main()
