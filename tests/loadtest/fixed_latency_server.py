"""A TF-Serving-compatible gRPC server whose Predict takes a fixed, known time per version.

For calibrating the load generator the way one calibrates an instrument: version 1 answers
at once, version 2 spins for exactly ``delay_us`` before answering (a busy wait: a sleep's
wake-up jitter on a shared machine is larger than the resolution being checked). The
difference of the two versions' p50 is then ``delay_us`` plus nothing the client adds, so
a recorder that rounds to milliseconds cannot see it and one that keeps microseconds must.
It is the library's :class:`~tfsuite.loadtest.scripted_server.ScriptedServer` (real protos,
real gRPC, port 0, no TensorFlow) with the per-request delay scripted per version.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

from typing_extensions import Self

from tfsuite.loadtest.scripted_server import LatencySchedule, ScriptedServer, serve_in_thread

MODEL = "fixed"


class FixedLatencyServer(ScriptedServer):
    """``with FixedLatencyServer({1: 0, 2: 300}) as srv:`` -> ``srv.address``."""

    def __init__(self, delays_us: dict[int, float]) -> None:
        super().__init__(LatencySchedule(base_s=0.0), MODEL, dict.fromkeys(delays_us))
        self.delays_us = delays_us
        self._running = ExitStack()

    async def _serve_one(self, version: int) -> None:
        self.served += 1
        until = time.perf_counter() + self.delays_us[version] / 1e6
        while time.perf_counter() < until:  # holds the event loop: one request at a time
            pass

    def __enter__(self) -> Self:
        self._running.enter_context(serve_in_thread(self))
        return self

    def __exit__(self, *exc: object) -> None:
        self._running.close()
