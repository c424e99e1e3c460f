"""Seed 001's multi-server run: one image list sharded over several servers, merged in order.

One worker thread per server takes the next batch from a shared queue (faster servers take
more), so the list is split as the servers go rather than in fixed chunks. Answers are put
back in input order by one results thread before ``on_batch`` sees them, so printing, COCO
JSON and drawings come out exactly as from one server.

A server that stops answering (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED) is dropped: the batch it had
in flight goes back to the front of the queue and the other servers carry on with it and
with the rest. Any other error (a bad request) would fail on every server and stops the run.
If every server is dropped, the images not answered are counted as such in the summary.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from rich.console import Console
from rich.table import Table

from tfsuite.clients.errors import ServerUnreachableError, ServingClientError
from tfsuite.clients.images import ImageReader, LoadedImage, Resize
from tfsuite.clients.pipeline import InputPlan, RunSummary, batches, progress_bar
from tfsuite.loadtest.offline.utilisation import UtilisationSummary

__all__ = ["SEED_COLUMNS", "FanOutSummary", "ServerShare", "print_fanout_summary", "run_sharded"]

log = logging.getLogger(__name__)

Predict = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
OnBatch = Callable[[list[LoadedImage], dict[str, np.ndarray]], None]

#: Seed 001's columns ("# GPU Used" / "Per GPU FPS": here servers, GPUs where up --gpus).
SEED_COLUMNS = (
    "# Image",
    "Image Size",
    "# Servers Used",
    "runtime (s)",
    "Average Utilization",
    "Per Server FPS",
)

#: Status codes that mean "this server is gone", not "this request is wrong". A server that
#: shuts down cancels the calls it has in flight (CANCELLED); this client never cancels its own.
SERVER_LOST = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
)


@dataclass
class ServerShare:
    """What one server did in a sharded run."""

    address: str
    images: int = 0
    requests: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    active_s: float = 0.0
    """From the run's start to this server's last answer (or its failure)."""
    failed: str | None = None
    """The status code it was dropped for (e.g. UNAVAILABLE), if it was; the full message
    is logged as a warning."""
    handed_back: int = 0
    """Images it had in flight when it was dropped; answered by the others."""

    @property
    def images_per_s(self) -> float:
        return self.images / self.active_s if self.active_s > 0 else 0.0


@dataclass
class FanOutSummary(RunSummary):
    """A :class:`RunSummary` with the per-server split (seed 001's table)."""

    servers: list[ServerShare] = field(default_factory=list)
    image_sizes: Counter[tuple[int, int]] = field(default_factory=Counter)
    """Original (width, height) of the images answered."""
    unanswered: int = 0
    """Images read but answered by no server (every server was dropped)."""
    utilisation: UtilisationSummary | None = None

    @property
    def servers_used(self) -> int:
        return sum(1 for s in self.servers if s.images)

    @property
    def per_server_fps(self) -> float:
        """Seed 001's "Per GPU FPS": images / runtime / servers used."""
        used = self.servers_used
        return self.images / self.wall_s / used if used and self.wall_s > 0 else 0.0

    def image_size_text(self) -> str:
        if not self.image_sizes:
            return "-"
        (w, h), _ = self.image_sizes.most_common(1)[0]
        more = len(self.image_sizes) - 1
        return f"{w}x{h}" + (f" (+{more} other size{'s' if more > 1 else ''})" if more else "")


def _server_lost(exc: BaseException) -> bool:
    return isinstance(exc, ServerUnreachableError) or (
        isinstance(exc, ServingClientError) and exc.code in SERVER_LOST
    )


class _Shards:
    """The shared queue, the in-order results and the run's state, under one condition.

    ``pending`` is a heap by batch number, so a batch handed back by a dropped server is the
    next one sent. Answers wait in ``ready`` until every earlier batch is answered; when that
    buffer is full, only the batch the results thread waits for may be sent (bounded memory
    behind a slow server, and no deadlock: that batch is always in flight or first in line).
    """

    def __init__(self, workers: int) -> None:
        self.cond = threading.Condition()
        self.pending: list[tuple[int, list[LoadedImage]]] = []
        self.capacity = 2 * workers
        self.ready_capacity = 4 * workers
        self.next_emit = 0
        self.in_flight = 0
        self.alive = workers
        self.produced = 0
        self.producer_done = False
        self.stop = False
        self.fatal: BaseException | None = None
        self.ready: dict[int, tuple[list[LoadedImage], dict[str, np.ndarray]]] = {}

    def put(self, seq: int, batch: list[LoadedImage]) -> bool:
        """Queue a batch; False when no server is left to take it (or the run stopped)."""
        with self.cond:
            while len(self.pending) >= self.capacity and self.alive and not self.stop:
                self.cond.wait()
            if not self.alive or self.stop:
                return False
            heapq.heappush(self.pending, (seq, batch))
            self.produced += 1
            self.cond.notify_all()
            return True

    def take(self) -> tuple[int, list[LoadedImage]] | None:
        with self.cond:
            while not self.stop and not (self.pending and self._may_send()):
                if not self.pending and self._drained():
                    return None
                self.cond.wait()
            if self.stop:
                return None
            self.in_flight += 1
            item = heapq.heappop(self.pending)
            self.cond.notify_all()
            return item

    def _may_send(self) -> bool:
        return len(self.ready) < self.ready_capacity or self.pending[0][0] == self.next_emit

    def _drained(self) -> bool:
        return self.producer_done and self.in_flight == 0

    def answered(self, seq: int, batch: list[LoadedImage], out: dict[str, np.ndarray]) -> None:
        with self.cond:
            self.ready[seq] = (batch, out)
            self.in_flight -= 1
            self.cond.notify_all()

    def hand_back(self, item: tuple[int, list[LoadedImage]]) -> None:
        """A dropped server's batch goes to the front: the next free server sends it."""
        with self.cond:
            heapq.heappush(self.pending, item)
            self.in_flight -= 1
            self.alive -= 1
            self.cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        with self.cond:
            self.fatal = self.fatal or exc
            self.in_flight -= 1
            self.stop = True
            self.cond.notify_all()

    def finish_producing(self) -> None:
        with self.cond:
            self.producer_done = True
            self.cond.notify_all()

    def halt(self) -> None:
        with self.cond:
            self.stop = True
            self.cond.notify_all()

    def next_ready(self, seq: int) -> tuple[list[LoadedImage], dict[str, np.ndarray]] | None:
        """Block until batch ``seq`` is answered; None when it never will be."""
        with self.cond:
            self.next_emit = seq
            self.cond.notify_all()  # a full buffer may now let batch ``seq`` go out
            while seq not in self.ready:
                hopeless = self.stop or not self.alive
                finished = self.producer_done and seq >= self.produced
                if (hopeless and self.in_flight == 0) or finished:
                    return None
                self.cond.wait()
            return self.ready.pop(seq)


def run_sharded(
    servers: Sequence[tuple[str, Predict]],
    paths: Sequence[Path],
    plan: InputPlan,
    on_batch: OnBatch,
    *,
    batch_size: int = 1,
    resize: Resize = None,
    keep_original: bool = False,
    progress: bool | None = None,
    console: Console | None = None,
) -> FanOutSummary:
    """Send every image to one of ``servers`` (address, predict); ``on_batch`` sees the
    answers in input order. See the module docstring for how failures are handled."""
    summary = FanOutSummary(total=len(paths), servers=[ServerShare(a) for a, _ in servers])
    shards = _Shards(len(servers))
    bar, task = progress_bar(len(paths), progress, console or Console(stderr=True))
    start = time.perf_counter()

    def work(share: ServerShare, predict: Predict) -> None:
        while (item := shards.take()) is not None:
            seq, batch = item
            tensor = plan.tensor([i.pixels for i in batch])  # type: ignore[misc]
            t0 = time.perf_counter()
            try:
                out = predict({plan.alias: tensor})
            except Exception as exc:
                if _server_lost(exc):
                    code = getattr(exc, "code", None)
                    share.failed = code.name if code is not None else type(exc).__name__
                    share.handed_back = len(batch)
                    share.active_s = time.perf_counter() - start
                    log.warning("dropped %s: %s; its batch goes to the others", share.address, exc)
                    shards.hand_back(item)
                else:
                    shards.fail(exc)
                return
            share.latencies_ms.append((time.perf_counter() - t0) * 1000.0)
            share.requests += 1
            share.images += len(batch)
            share.active_s = time.perf_counter() - start
            shards.answered(seq, batch, out)

    def emit() -> None:
        seq = 0
        try:
            while (answered := shards.next_ready(seq)) is not None:
                batch, out = answered
                on_batch(batch, out)
                for item in batch:
                    summary.image_sizes[item.original_size] += 1
                summary.images += len(batch)
                summary.requests += 1
                bar.advance(task, len(batch))
                seq += 1
        except Exception as exc:
            with shards.cond:
                shards.fatal = shards.fatal or exc
            shards.halt()

    threads = [
        threading.Thread(target=work, args=(share, fn), name=f"tfsuite-shard-{i}", daemon=True)
        for i, (share, (_, fn)) in enumerate(zip(summary.servers, servers))
    ]
    emitter = threading.Thread(target=emit, name="tfsuite-results", daemon=True)
    with bar, ImageReader(paths, resize, keep_original=keep_original) as reader:
        for t in [*threads, emitter]:
            t.start()
        read = 0
        try:
            for seq, batch in enumerate(
                batches(reader, batch_size, summary, lambda n: bar.advance(task, n))
            ):
                read += len(batch)
                if not shards.put(seq, batch):
                    break
        except KeyboardInterrupt:
            summary.interrupted = True
            shards.halt()
        finally:
            shards.finish_producing()
            for t in threads:
                t.join()
            emitter.join()
    summary.wall_s = time.perf_counter() - start
    summary.latencies_ms = [ms for s in summary.servers for ms in s.latencies_ms]
    summary.unanswered = max(0, read - summary.images) if not summary.interrupted else 0
    if shards.fatal is not None:
        raise shards.fatal
    return summary


def print_fanout_summary(summary: FanOutSummary, console: Console, title: str) -> None:
    """Seed 001's table, then one row per server and what happened to the dropped ones."""
    util = summary.utilisation
    if util is not None and util.gpu_util_pct is not None:
        utilisation = f"{util.gpu_util_pct:.1f}% (GPU)"
    elif util is not None and util.cpu_system_pct is not None:
        utilisation = f"{util.cpu_system_pct:.1f}% (CPU)"
    else:
        utilisation = "-"
    stopped = " (interrupted)" if summary.interrupted else ""
    # Seed 001's own markdown table, so a run's line can go straight into the same notes.
    header = SEED_COLUMNS
    row = (
        f"{summary.images}{stopped}",
        summary.image_size_text(),
        f"{summary.servers_used} / {len(summary.servers)}",
        f"{summary.wall_s:.1f}",
        utilisation,
        f"{summary.per_server_fps:.2f}",
    )
    widths = [max(len(h), len(c)) for h, c in zip(header, row)]
    console.print(title, markup=False, highlight=False)
    for cells in (header, tuple("-" * w for w in widths), row):
        line = "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    per = Table(title="per server", title_justify="left")
    for column in ("server", "images", "requests", "images/s", "p50 ms", "status"):
        per.add_column(column, justify="left" if column in ("server", "status") else "right")
    for s in summary.servers:
        p50 = f"{np.percentile(s.latencies_ms, 50):.1f}" if s.latencies_ms else "-"
        status = "ok"
        if s.failed:
            status = f"dropped ({s.failed}): {s.handed_back} image(s) retried on the others"
        per.add_row(s.address, str(s.images), str(s.requests), f"{s.images_per_s:.2f}", p50, status)
    console.print(per)
    if summary.unanswered:
        console.print(f"{summary.unanswered} image(s) were not answered: every server was dropped")
    for path, why in summary.skipped:
        console.print(f"skipped {path}: {why}", markup=False, highlight=False)
