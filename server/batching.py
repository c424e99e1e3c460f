"""Dynamic batching: TF Serving's shared batch scheduler, as a small module.

- ``BatchScheduler`` owns ``num_batch_threads`` threads shared by every queue (TF Serving's
  ``SharedBatchScheduler``); ``scheduler.add_queue(run, params)`` makes one
  ``DynamicBatcher`` per model version + signature.
- ``DynamicBatcher.submit(inputs) -> Future``: a task joins the open batch if it fits,
  otherwise opens a new one (at most ``max_enqueued_batches`` batches wait, else
  UNAVAILABLE). A batch runs when it is full, when a newer batch exists behind it, or when
  ``batch_timeout_micros`` have passed since it was opened (0: as soon as a thread is free).
  With ``enable_large_batch_splitting`` a request (up to ``max_batch_size`` rows) that does
  not fit the open batch is cut into parts filling batches of ``max_execution_batch_size``;
  its future completes when every part has run, rows back in order.
- ``merge_inputs`` / ``split_outputs`` (pure functions) concatenate the tasks' tensors along
  dim 0 — padding inner dims when ``pad_variable_length_inputs`` is on and the batch up to
  the next ``allowed_batch_sizes`` entry by repeating its first row — and cut the outputs
  back per task.

Errors carry TF Serving's codes and messages (``ServingError``). ``run`` is any callable
``dict[str, ndarray] -> dict[str, ndarray]``: a signature, or a plain function in tests.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import numpy as np

from tfsuite.server.errors import ServingError

__all__ = [
    "BatchObserver",
    "BatchParams",
    "BatchScheduler",
    "DynamicBatcher",
    "merge_inputs",
    "padded_size",
    "split_outputs",
    "task_size",
]

log = logging.getLogger(__name__)

Tensors = Mapping[str, np.ndarray]
RunFn = Callable[[dict[str, np.ndarray]], Mapping[str, np.ndarray]]
#: Called after each batch: (task sizes, processed batch size, seconds each task queued).
BatchObserver = Callable[[Sequence[int], int, Sequence[float]], None]


class BatchParams(Protocol):
    """What the batcher reads (``tfsuite.serving_configs.batching.BatchingOptions`` fits)."""

    max_batch_size: int
    batch_timeout_micros: int
    max_enqueued_batches: int
    num_batch_threads: int
    allowed_batch_sizes: tuple[int, ...]
    pad_variable_length_inputs: bool
    enable_large_batch_splitting: bool

    @property
    def execution_batch_size(self) -> int: ...


# -- merge and split (no threads, no state) ---------------------------------------------------
def task_size(inputs: Tensors) -> int:
    """The task's batch size: dim 0, equal across its tensors (TF Serving's check)."""
    size: int | None = None
    for arr in inputs.values():
        if arr.ndim == 0:
            raise ServingError.invalid_argument(
                "Batching Run() input tensors must have at least one dimension"
            )
        if size is None:
            size = arr.shape[0]
        elif arr.shape[0] != size:
            raise ServingError.invalid_argument(
                "Batching Run() input tensors must have equal 0th-dimension size"
            )
    if size is None:
        raise ServingError.invalid_argument("Batching Run() must have at least one input tensor")
    return size


def padded_size(size: int, allowed: Sequence[int]) -> int:
    """The smallest allowed batch size >= ``size`` (``size`` itself when none are set)."""
    for candidate in allowed:
        if candidate >= size:
            return candidate
    return size


def _pad_value(arr: np.ndarray) -> Any:
    return b"" if arr.dtype.kind in "OS" else 0


def merge_inputs(
    tasks: Sequence[Tensors], target_size: int, pad_variable_length_inputs: bool = False
) -> dict[str, np.ndarray]:
    """Concatenate each alias along dim 0; pad inner dims and rows as TF Serving does.

    Inner dims that differ between tasks are padded (with zeros / empty strings) to the
    largest in the batch when ``pad_variable_length_inputs``, else FAILED_PRECONDITION.
    Rows are padded up to ``target_size`` with copies of the first row.
    """
    merged: dict[str, np.ndarray] = {}
    for alias in tasks[0]:
        arrays = [t[alias] for t in tasks]
        inner = arrays[0].shape[1:]
        if any(a.shape[1:] != inner for a in arrays):
            if not pad_variable_length_inputs or any(a.ndim != arrays[0].ndim for a in arrays):
                raise ServingError.padding_off(alias)
            widest = tuple(max(a.shape[d] for a in arrays) for d in range(1, arrays[0].ndim))
            arrays = [
                np.pad(
                    a,
                    [(0, 0)] + [(0, w - s) for w, s in zip(widest, a.shape[1:])],
                    constant_values=_pad_value(a),
                )
                for a in arrays
            ]
        batch = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=0)
        missing = target_size - batch.shape[0]
        if missing > 0 and batch.shape[0] > 0:
            batch = np.concatenate([batch, np.repeat(batch[:1], missing, axis=0)], axis=0)
        merged[alias] = batch
    return merged


def split_outputs(outputs: Tensors, sizes: Sequence[int]) -> list[dict[str, np.ndarray]]:
    """Cut each output along dim 0 into the tasks' row ranges (padding rows dropped)."""
    total = sum(sizes)
    for alias, arr in outputs.items():
        if arr.ndim == 0:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Batched output tensor {alias} has 0 dimensions",
            )
        if arr.shape[0] < total:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Batched output tensor {alias}'s 0th dimension ({arr.shape[0]}) is smaller "
                f"than the sum of the 0th dimension sizes of the input tensors ({total})",
            )
    parts: list[dict[str, np.ndarray]] = []
    offset = 0
    for size in sizes:
        parts.append({alias: arr[offset : offset + size] for alias, arr in outputs.items()})
        offset += size
    return parts


def _split_sizes(size: int, room: int, batch_rows: int) -> list[int]:
    """Part sizes for a task split over batches: fill the open batch's room, then whole ones."""
    parts = [room] if room > 0 else []
    left = size - sum(parts)
    while left > 0:
        parts.append(min(batch_rows, left))
        left -= parts[-1]
    return parts


def _join_parts(
    pieces: Sequence[Future[dict[str, np.ndarray]]], future: Future[dict[str, np.ndarray]]
) -> None:
    """Complete ``future`` with the parts' outputs concatenated once every part is done."""
    remaining = [len(pieces)]
    lock = threading.Lock()

    def done(_: Future[dict[str, np.ndarray]]) -> None:
        with lock:
            remaining[0] -= 1
            if remaining[0]:
                return
        errors = [p.exception() for p in pieces if p.exception() is not None]
        if errors:
            future.set_exception(errors[0])
            return
        results = [p.result() for p in pieces]
        future.set_result(
            {alias: np.concatenate([r[alias] for r in results], axis=0) for alias in results[0]}
        )

    for piece in pieces:
        piece.add_done_callback(done)


# -- scheduling ---------------------------------------------------------------------------------
@dataclass(slots=True)
class _Task:
    inputs: Tensors
    size: int
    future: Future[dict[str, np.ndarray]]
    enqueued: float


@dataclass(slots=True)
class _Batch:
    deadline: float
    tasks: list[_Task] = field(default_factory=list)
    size: int = 0


class DynamicBatcher:
    """One batching queue (a model version + signature); made by ``BatchScheduler.add_queue``."""

    def __init__(
        self,
        scheduler: BatchScheduler,
        run: RunFn,
        params: BatchParams,
        observer: BatchObserver | None = None,
        name: str = "",
    ) -> None:
        self._scheduler = scheduler
        self._run = run
        self.params = params
        self.name = name
        self._observer = observer
        self._timeout = params.batch_timeout_micros / 1e6
        self._max = params.max_batch_size
        # Large-batch splitting (off by default, as in TF Serving): a request may be as big as
        # max_batch_size but batches hold at most max_execution_batch_size rows, so a request
        # that does not fit the open batch is cut into parts over several batches.
        self._split = params.enable_large_batch_splitting
        self._batch_rows = params.execution_batch_size
        self._max_batches = params.max_enqueued_batches
        self._batches: deque[_Batch] = deque()
        self._closed = False

    def submit(self, inputs: Tensors) -> Future[dict[str, np.ndarray]]:
        """Queue one request's tensors; the future yields its rows of every output."""
        size = task_size(inputs)
        if size > self._max:
            raise ServingError.task_too_large(size, self._max)
        now = time.monotonic()
        future: Future[dict[str, np.ndarray]] = Future()
        cond = self._scheduler._cond
        with cond:
            if self._closed:
                raise ServingError.unavailable("The batch scheduling queue is closed (unloading)")
            open_batch = self._batches[-1] if self._batches else None
            room = self._batch_rows - open_batch.size if open_batch is not None else 0
            if size <= room:
                parts = [size]
            elif not self._split or size == 0:
                parts = [size]
                room = 0  # the whole task opens a new batch
            else:
                parts = _split_sizes(size, room, self._batch_rows)
            new_batches = len(parts) - (1 if room > 0 else 0)
            if len(self._batches) + new_batches > self._max_batches:
                raise ServingError.queue_full()
            batches_before = len(self._batches)
            if len(parts) == 1:
                self._place(_Task(inputs, size, future, now), now, room)
            else:
                offset = 0
                pieces: list[Future[dict[str, np.ndarray]]] = []
                for part in parts:
                    piece: Future[dict[str, np.ndarray]] = Future()
                    chunk = {a: arr[offset : offset + part] for a, arr in inputs.items()}
                    self._place(_Task(chunk, part, piece, now), now, room)
                    room = 0  # only the first part joins the open batch
                    offset += part
                    pieces.append(piece)
                _join_parts(pieces, future)
            # Wake a batch thread only when what it waits for changed: a new batch (a new
            # deadline, or a head that may now run) or a full one. A task joining an open
            # batch changes neither; waking a thread per request costs a GIL hand-off each.
            if len(self._batches) != batches_before or self._batches[-1].size >= self._batch_rows:
                cond.notify()
        return future

    def _place(self, task: _Task, now: float, room: int) -> None:
        """Append to the open batch when the task fits its room, else to a new batch."""
        if room >= task.size and self._batches:
            batch = self._batches[-1]
        else:
            batch = _Batch(now + self._timeout)
            self._batches.append(batch)
        batch.tasks.append(task)
        batch.size += task.size

    def close(self) -> None:
        """Refuse new tasks; queued ones still run (at once, without waiting for timeouts)."""
        with self._scheduler._cond:
            self._closed = True
            self._scheduler._cond.notify_all()
        self._scheduler._remove_when_empty(self)

    @property
    def queued_tasks(self) -> int:
        with self._scheduler._cond:
            return sum(len(b.tasks) for b in self._batches)

    # -- called by the scheduler (under its lock) -------------------------------------------
    def _ready_batch(self, now: float, urgent: bool) -> tuple[_Batch | None, float]:
        """Pop the head batch if it may run; else how long until it may."""
        if not self._batches:
            return None, float("inf")
        head = self._batches[0]
        if (
            urgent
            or self._closed
            or head.size >= self._batch_rows
            or len(self._batches) > 1
            or (now >= head.deadline)
        ):
            return self._batches.popleft(), 0.0
        return None, head.deadline - now

    def _process(self, batch: _Batch) -> None:
        tasks = batch.tasks
        sizes = [t.size for t in tasks]
        target = padded_size(batch.size, self.params.allowed_batch_sizes)
        started = time.monotonic()
        try:
            merged = merge_inputs(
                [t.inputs for t in tasks], target, self.params.pad_variable_length_inputs
            )
            parts = split_outputs(self._run(merged), sizes)
        except Exception as err:
            error = (
                err
                if isinstance(err, ServingError)
                else ServingError(grpc.StatusCode.INTERNAL, f"{type(err).__name__}: {err}")
            )
            for task in tasks:
                task.future.set_exception(error)
        else:
            for task, part in zip(tasks, parts):
                task.future.set_result(part)
        if self._observer is not None:
            try:
                self._observer(sizes, target, [started - t.enqueued for t in tasks])
            except Exception:  # metrics must never fail a batch
                log.exception("batch observer failed")


class BatchScheduler:
    """Batch threads shared by all queues; picks ready batches round-robin across queues."""

    def __init__(self, num_batch_threads: int, name: str = "batch_threads") -> None:
        self._cond = threading.Condition()
        self._queues: list[DynamicBatcher] = []
        self._rr = itertools.count()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._worker, name=f"{name}-{i}", daemon=True)
            for i in range(max(1, num_batch_threads))
        ]
        for thread in self._threads:
            thread.start()

    def add_queue(
        self,
        run: RunFn,
        params: BatchParams,
        observer: BatchObserver | None = None,
        name: str = "",
    ) -> DynamicBatcher:
        batcher = DynamicBatcher(self, run, params, observer, name)
        with self._cond:
            if self._stopping:
                raise ServingError.unavailable("The batch scheduler is stopped")
            self._queues.append(batcher)
        return batcher

    def _remove_when_empty(self, batcher: DynamicBatcher) -> None:
        # A closed queue's remaining batches are picked up immediately; the queue is
        # dropped by the worker that empties it.
        with self._cond:
            if not batcher._batches and batcher in self._queues:
                self._queues.remove(batcher)

    def stop(self, timeout: float | None = None) -> None:
        """Run what is queued, then end the threads. New submissions fail with UNAVAILABLE."""
        with self._cond:
            self._stopping = True
            for queue in self._queues:
                queue._closed = True
            self._cond.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _next(self) -> tuple[DynamicBatcher | None, _Batch | None, float]:
        now = time.monotonic()
        queues = self._queues
        wait = float("inf")
        n = len(queues)
        start = next(self._rr) % n if n else 0
        for i in range(n):
            queue = queues[(start + i) % n]
            batch, until = queue._ready_batch(now, self._stopping)
            if batch is not None:
                if queue._closed and not queue._batches:
                    queues.remove(queue)
                return queue, batch, 0.0
            wait = min(wait, until)
        return None, None, wait

    def _worker(self) -> None:
        while True:
            with self._cond:
                while True:
                    queue, batch, wait = self._next()
                    if batch is not None:
                        # Hand the watch on: a batch still queued needs a waiting thread that
                        # knows its deadline (submit wakes one only for a new or full batch).
                        if any(q._batches for q in self._queues):
                            self._cond.notify()
                        break
                    if self._stopping:
                        return
                    self._cond.wait(None if wait == float("inf") else wait)
            assert queue is not None
            queue._process(batch)
