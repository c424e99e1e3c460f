"""The image run shared by ``tfsuite detect`` and ``tfsuite classify``.

Images are read ahead by :class:`~tfsuite.clients.images.ImageReader`, grouped into batches
of equal size, sent one request at a time, and handed to a per-command ``on_batch``
callback with the outputs (on a results thread, while the next request is at the server).
Requests are timed by the client's call hook (:mod:`tfsuite.clients.hooks`) when its
``call_hooks`` list is passed in, else around the ``predict`` call. Unreadable images
are skipped and counted; Ctrl-C stops after the current request and the summary (and
whatever the callback wrote) still comes out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from tfsuite.clients.hooks import CallEvent, CallHook
from tfsuite.clients.images import ImageReader, LoadedImage, Resize
from tfsuite.clients.specs import ModelMetadata, SignatureSpec
from tfsuite.errors import UsageError
from tfsuite.loadtest.stats import percentile

__all__ = [
    "InputPlan",
    "Preprocess",
    "RunSummary",
    "plan_input",
    "print_summary",
    "run_images",
    "signature_of",
]

log = logging.getLogger(__name__)

Preprocess = Literal["mobilenet", "unit", "raw"]
"""How float inputs get pixels: x/127.5-1 ([-1, 1]), x/255 ([0, 1]) or 0..255 as is."""

#: Lists at least this long get a progress bar (on a terminal).
PROGRESS_MIN_IMAGES = 50


@dataclass
class RunSummary:
    """What a run did, for the final table."""

    total: int
    """Images asked for."""
    images: int = 0
    """Images sent and answered."""
    requests: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    wall_s: float = 0.0
    interrupted: bool = False

    @property
    def images_per_s(self) -> float:
        return self.images / self.wall_s if self.wall_s > 0 else 0.0

    def percentile(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


@dataclass(frozen=True)
class InputPlan:
    """Which input the images go to, and as what."""

    alias: str
    dtype: str
    preprocess: Preprocess

    def tensor(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        # One image: a view with a batch axis, no copy (np.stack would copy the pixels).
        stacked = batch[0][None] if len(batch) == 1 else np.stack(batch)
        if self.dtype == "uint8":
            return stacked
        x = stacked.astype(np.float32 if self.dtype not in ("float16", "float64") else self.dtype)
        if self.preprocess == "mobilenet":
            x = x / np.float32(127.5) - np.float32(1.0)
        elif self.preprocess == "unit":
            x = x / np.float32(255.0)
        return x.astype(self.dtype, copy=False) if self.dtype.startswith("float") else x


def signature_of(meta: ModelMetadata, name: str | None) -> SignatureSpec:
    try:
        return meta.signature(name)
    except KeyError:
        raise UsageError(
            f"model {meta.name} has no signature {name or 'serving_default'!r}; "
            f"it has {', '.join(sorted(meta.signatures)) or 'none'} (choose one with --signature)"
        ) from None


def plan_input(
    sig: SignatureSpec, model: str, wanted: str | None, preprocess: Preprocess
) -> InputPlan:
    if wanted:
        spec = sig.inputs.get(wanted)
        if spec is None:
            raise UsageError(
                f"signature {sig.name!r} of {model} has no input {wanted!r}; "
                f"inputs: {', '.join(sig.inputs)}"
            )
    elif len(sig.inputs) == 1:
        (spec,) = sig.inputs.values()
    else:
        raise UsageError(
            f"signature {sig.name!r} of {model} has {len(sig.inputs)} inputs "
            f"({', '.join(sig.inputs)}); name the image input with --input"
        )
    if spec.dtype not in ("uint8", "float32", "float16", "float64"):
        raise UsageError(
            f"input {spec.alias!r} of {model} takes {spec.dtype}, "
            "not images (uint8 or float pixels)"
        )
    if spec.shape is not None and (len(spec.shape) != 4 or spec.shape[-1] not in (None, 3)):
        raise UsageError(
            f"input {spec.alias!r} of {model} has shape {list(spec.shape)}, "
            "not [batch, height, width, 3]"
        )
    return InputPlan(spec.alias, spec.dtype, preprocess)


def _batches(
    images: Any, batch_size: int, summary: RunSummary, advance: Callable[[int], None]
) -> Any:
    """Group readable images into batches of one size; unreadable ones are counted and skipped."""
    batch: list[LoadedImage] = []
    for item in images:
        if item.pixels is None:
            summary.skipped.append((item.path, item.error or "unreadable"))
            log.warning("skipped %s: %s", item.path, item.error)
            advance(1)
            continue
        if batch and batch[0].pixels.shape != item.pixels.shape:  # type: ignore[union-attr]
            yield batch  # sizes differ (--resize keep): a tensor needs one shape
            batch = []
        batch.append(item)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_images(
    predict: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
    paths: Sequence[Path],
    plan: InputPlan,
    on_batch: Callable[[list[LoadedImage], dict[str, np.ndarray]], None],
    *,
    batch_size: int = 1,
    resize: Resize = None,
    keep_original: bool = False,
    progress: bool | None = None,
    console: Console | None = None,
    call_hooks: list[CallHook] | None = None,
) -> RunSummary:
    """Send every image; ``on_batch(images, outputs)`` sees each answered batch in order.

    ``call_hooks``: the client's hook list; the run listens there for its latencies."""
    if batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    summary = RunSummary(total=len(paths))
    console = console or Console(stderr=True)
    show = progress
    if show is None:
        show = len(paths) >= PROGRESS_MIN_IMAGES and console.is_terminal
    bar = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not show,
    )
    task = bar.add_task("images", total=len(paths))

    def handle(batch: list[LoadedImage], outputs: dict[str, np.ndarray]) -> None:
        on_batch(batch, outputs)
        bar.advance(task, len(batch))

    def timed(event: CallEvent) -> None:
        if event.method == "Predict" and event.exception is None:
            summary.latencies_ms.append(event.seconds * 1000.0)

    if call_hooks is not None:
        call_hooks.append(timed)
    start = time.perf_counter()
    # Answers are handled (boxes, printing, drawing, files) on one results thread while the
    # next request is already at the server: one request in flight, as in a plain loop, but
    # the server does not wait for the client's own work. One thread keeps them in order;
    # leaving the ``with`` waits for it, so everything answered is handled on every exit.
    with (
        bar,
        ImageReader(paths, resize, keep_original=keep_original) as reader,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="tfsuite-results") as results,
    ):
        handled: Future[None] | None = None
        try:
            for batch in _batches(reader, batch_size, summary, lambda n: bar.advance(task, n)):
                tensor = plan.tensor([item.pixels for item in batch])  # type: ignore[misc]
                t0 = time.perf_counter()
                outputs = predict({plan.alias: tensor})
                if call_hooks is None:
                    summary.latencies_ms.append((time.perf_counter() - t0) * 1000.0)
                summary.requests += 1
                summary.images += len(batch)
                if handled is not None:
                    handled.result()  # the previous batch's handling failed: stop here
                handled = results.submit(handle, batch, outputs)
            if handled is not None:
                handled.result()
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            if call_hooks is not None:
                call_hooks.remove(timed)
    # Measured after the ``with``: the wall time includes handling the last answers.
    summary.wall_s = time.perf_counter() - start
    return summary


def print_summary(summary: RunSummary, console: Console, title: str) -> None:
    # min_width: rich wraps a title at the table's width, and this two-column table is
    # narrower than "detect: NAME (label L, gRPC)".
    table = Table(title=title, show_header=False, title_justify="left", min_width=len(title))
    table.add_column("what")
    table.add_column("value", justify="right")
    stopped = " (interrupted)" if summary.interrupted else ""
    table.add_row("images", f"{summary.images} of {summary.total}{stopped}")
    table.add_row("requests", str(summary.requests))
    table.add_row("wall time", f"{summary.wall_s:.2f} s")
    table.add_row("images/s", f"{summary.images_per_s:.1f}")
    for q in (50, 90, 99):
        table.add_row(f"latency p{q}", f"{summary.percentile(q):.1f} ms")
    table.add_row("skipped (unreadable)", str(len(summary.skipped)))
    console.print(table)
    for path, why in summary.skipped:
        console.print(f"skipped {path}: {why}", markup=False, highlight=False)
