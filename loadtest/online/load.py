"""The two load managers (perf_analyzer's split): closed loop and open loop.

* :class:`ConcurrencyManager` keeps ``concurrency`` requests in flight: each of that many
  workers sends the next pooled request as soon as its previous one is answered.
* :class:`RequestRateManager` sends on a schedule fixed in advance (:func:`arrival_times`,
  constant spacing or Poisson arrivals, seeded), whatever the answers do. At most
  ``max_inflight`` requests are outstanding (like wrk2's connections); a send that has to
  wait for a slot goes out late, and the recorder, measuring from the scheduled time,
  still charges that wait to the server (coordinated omission corrected).

Neither times a call: the clients' call hook reports each one to the recorder. Both run
until :meth:`LoadManager.stop`; a request still in flight then is not waited for beyond
the client's deadline and is not counted (the recorder has stopped by then).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from tfsuite.clients.errors import ServingClientError
from tfsuite.clients.grpc_client import AsyncTFServingClient
from tfsuite.loadtest.online.recorder import scheduled_send

__all__ = [
    "DEFAULT_MAX_INFLIGHT",
    "ConcurrencyManager",
    "LoadManager",
    "RequestRateManager",
    "arrival_times",
]

#: Open loop: at most this many requests outstanding by default.
DEFAULT_MAX_INFLIGHT = 256
#: After an error, a worker waits this long before its next send (a dead server answers
#: UNAVAILABLE at once; without a pause the workers would spin).
ERROR_PAUSE_S = 0.005
#: Open loop: timers are set this much before a scheduled send (see _dispatch).
WAKE_EARLY_S = 0.0005


def arrival_times(
    rate: float, duration_s: float, *, poisson: bool = False, seed: int = 0
) -> np.ndarray:
    """Send offsets (seconds from the start) for ``duration_s`` at ``rate`` requests/s."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    count = int(np.ceil(rate * duration_s)) + 1
    if not poisson:
        return np.arange(count, dtype=np.float64) / rate
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, size=count)
    gaps[0] = 0.0
    return np.cumsum(gaps)


class LoadManager:
    """Owns the sending tasks of one step."""

    def __init__(
        self, client: AsyncTFServingClient, requests: Iterator[Any], timeout: float | None
    ) -> None:
        self.client = client
        self.requests = requests
        self.timeout = timeout
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        raise NotImplementedError

    async def _send(self, rpc: Any) -> bool:
        """One call; False when it failed (the hook has recorded it either way)."""
        try:
            await self.client.send(rpc, self.timeout)
        except ServingClientError:
            return False
        return True

    async def stop(self) -> None:
        """Stop sending; cancel what is still in flight."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()


class ConcurrencyManager(LoadManager):
    """Closed loop: ``concurrency`` requests in flight."""

    def __init__(
        self,
        client: AsyncTFServingClient,
        requests: Iterator[Any],
        concurrency: int,
        timeout: float | None = None,
    ) -> None:
        super().__init__(client, requests, timeout)
        self.concurrency = concurrency

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker()) for _ in range(self.concurrency)]

    async def _worker(self) -> None:
        requests = self.requests
        while not self._stopping:
            if not await self._send(next(requests)):
                await asyncio.sleep(ERROR_PAUSE_S)


class RequestRateManager(LoadManager):
    """Open loop: sends at ``offsets`` (seconds after :meth:`start`), fixed in advance."""

    def __init__(
        self,
        client: AsyncTFServingClient,
        requests: Iterator[Any],
        offsets: np.ndarray,
        max_inflight: int = DEFAULT_MAX_INFLIGHT,
        timeout: float | None = None,
    ) -> None:
        super().__init__(client, requests, timeout)
        self.offsets = offsets
        self.max_inflight = max_inflight
        self.t0 = 0.0
        self._slots = asyncio.Semaphore(max_inflight)
        self._inflight: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self._tasks = [asyncio.get_running_loop().create_task(self._dispatch())]

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        clock = time.perf_counter
        slots = self._slots
        requests = self.requests
        try:
            for offset in self.offsets.tolist():
                if self._stopping:
                    break
                when = self.t0 + offset
                delay = when - clock()
                if delay > WAKE_EARLY_S:
                    # The loop's timers wake up to 1 ms late (epoll rounds up to whole ms):
                    # ask for half a millisecond early, then yield until the exact time.
                    await asyncio.sleep(delay - WAKE_EARLY_S)
                while clock() < when:
                    await asyncio.sleep(0)
                await slots.acquire()
                task = loop.create_task(self._one(next(requests), when))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
        finally:
            for task in list(self._inflight):
                task.cancel()

    async def _one(self, rpc: Any, when: float) -> None:
        scheduled_send.set(when)  # this task's own context: the recorder reads it
        try:
            await self._send(rpc)
        finally:
            self._slots.release()
