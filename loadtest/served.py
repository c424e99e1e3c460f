"""Served comparison of one model's versions: the same images to every version, over gRPC.

Two passes per loadable version, each addressed by its label (the way a user names the
variant):

* **sequential** — one request at a time, one image per request: client-side latency of
  each request, and the outputs compared with version 1's (top-1 agreement for classifiers,
  IoU-matched detection agreement for detectors, max abs error for anything else);
* **under load** — ``concurrency`` requests in flight on the asyncio client: throughput,
  latency under load, and the batch sizes the server actually formed for that version (read
  from its Prometheus endpoint, whose ``model_version`` label TF Serving itself lacks).

Clients never import the server: everything here is gRPC plus one HTTP scrape. Calls are
timed by the clients' call hook, percentiles come from :mod:`tfsuite.loadtest.stats`, and
output agreement is :mod:`tfsuite.export.agreement`'s (no TensorFlow in this process).
The full measurement engine is ``tfsuite compare`` (:mod:`tfsuite.loadtest.online`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from rich.table import Table

from tfsuite.atomic import atomic_write_json, atomic_write_text
from tfsuite.clients.grpc_client import AsyncTFServingClient, TFServingClient
from tfsuite.clients.hooks import CallEvent
from tfsuite.clients.images import ImageReader
from tfsuite.clients.pipeline import Preprocess, plan_input, signature_of
from tfsuite.export.agreement import compare_outputs
from tfsuite.export.manifest import VariantRecord, VariantsManifest
from tfsuite.loadtest.stats import percentiles
from tfsuite.serving_configs.monitoring import PROCESSED_BATCH_SIZE

__all__ = [
    "ServedInputs",
    "VersionResult",
    "compare_versions",
    "comparison_table",
    "load_table",
    "skipped_notes",
    "write_results",
]


@dataclass
class VersionResult:
    """One version of one model, as served."""

    model: str
    version: int
    variant: str
    status: str
    reason: str = ""
    size_bytes: int | None = None
    requests: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    images_per_s: float | None = None
    agreement: float | None = None
    """Top-1 agreement (classifier) or matched-detection share (detector) vs version 1."""
    max_abs_error: float | None = None
    """Largest abs difference from version 1 (detectors: over matched boxes and scores)."""
    load_concurrency: int = 0
    load_images_per_s: float | None = None
    load_p50_ms: float | None = None
    load_p99_ms: float | None = None
    mean_batch_size: float | None = None
    """Mean processed batch size the server formed for this version under load."""
    latencies_ms: list[float] = field(default_factory=list, repr=False)


@dataclass(frozen=True)
class ServedInputs:
    """The request tensors every version gets: one image each, already preprocessed."""

    alias: str
    tensors: list[np.ndarray]

    @classmethod
    def from_images(
        cls,
        client: TFServingClient,
        model: str,
        images: Sequence[Path],
        *,
        preprocess: Preprocess = "mobilenet",
        resize: tuple[int, int] | None = None,
    ) -> ServedInputs:
        plan = plan_input(signature_of(client.metadata(model), None), model, None, preprocess)
        with ImageReader(list(images), resize) as reader:
            pixels = [item.pixels for item in reader if item.pixels is not None]
        return cls(plan.alias, [plan.tensor([p]) for p in pixels])


def _percentiles(latencies_ms: Sequence[float]) -> tuple[float, float]:
    p50, p99 = percentiles(latencies_ms, (50, 99))
    return p50, p99


class _Latencies(list[float]):
    """A call-hook listener keeping each successful Predict's latency in ms (short passes)."""

    def __call__(self, event: CallEvent) -> None:
        if event.method == "Predict" and event.exception is None:
            self.append(event.seconds * 1000.0)


@contextmanager
def _listening(client: TFServingClient, into: _Latencies) -> Iterator[_Latencies]:
    client.call_hooks.append(into)
    try:
        yield into
    finally:
        client.call_hooks.remove(into)


def _sequential(
    client: TFServingClient,
    model: str,
    record: VariantRecord,
    inputs: ServedInputs,
    result: VersionResult,
) -> dict[str, np.ndarray]:
    """One request at a time; returns the outputs stacked over the images."""
    client.predict({inputs.alias: inputs.tensors[0]}, model, label=record.variant)  # warm the path
    outputs = []
    with _listening(client, _Latencies()) as timed:
        for tensor in inputs.tensors:
            outputs.append(client.predict({inputs.alias: tensor}, model, label=record.variant))
    result.latencies_ms.extend(timed)
    result.requests = len(inputs.tensors)
    result.p50_ms, result.p99_ms = _percentiles(result.latencies_ms)
    result.images_per_s = 1000.0 * result.requests / float(sum(result.latencies_ms))
    return {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}


async def _under_load(
    address: str,
    model: str,
    label: str,
    inputs: ServedInputs,
    concurrency: int,
    requests: int,
) -> tuple[list[float], float]:
    """``requests`` predictions with ``concurrency`` in flight; (latencies ms, wall seconds)."""
    latencies = _Latencies()
    client = AsyncTFServingClient(address, model=model, call_hooks=[latencies])
    sent = 0

    async def worker() -> None:
        nonlocal sent
        while sent < requests:
            tensor = inputs.tensors[sent % len(inputs.tensors)]
            sent += 1
            await client.predict({inputs.alias: tensor}, label=label)

    try:
        await client.wait_ready()
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, loop.time() - start
    finally:
        await client.close()


def _batch_totals(metrics_url: str, model: str, version: int) -> tuple[float, float]:
    """(sum, count) of the processed-batch-size histogram for one model version."""
    text = httpx.get(metrics_url, timeout=10.0).raise_for_status().text
    total = count = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != PROCESSED_BATCH_SIZE:
            continue
        for sample in family.samples:
            labels = sample.labels
            if labels.get("model_name") != model or labels.get("model_version") != str(version):
                continue
            if sample.name.endswith("_sum"):
                total += sample.value
            elif sample.name.endswith("_count"):
                count += sample.value
    return total, count


def compare_versions(
    client: TFServingClient,
    model: str,
    manifest: VariantsManifest,
    inputs: ServedInputs,
    *,
    concurrency: int = 16,
    load_requests: int = 0,
    metrics_url: str | None = None,
) -> list[VersionResult]:
    """Every version of ``model``: sequential pass (latency, agreement with version 1), then,
    if ``load_requests``, a pass with ``concurrency`` in flight (throughput, batch sizes)."""
    results: list[VersionResult] = []
    reference: dict[str, np.ndarray] | None = None
    for record in manifest.variants:
        result = VersionResult(
            model, record.version, record.variant, record.status, record.reason, record.size_bytes
        )
        results.append(result)
        if not record.loadable:
            continue
        stacked = _sequential(client, model, record, inputs, result)
        if reference is None:
            reference = stacked  # the first loadable version (1, original) is the reference
        # The exporter's own comparison, without tolerances: the served outputs are judged
        # exactly as the variant was when it was validated.
        agreement = compare_outputs(reference, stacked, manifest.kind, tolerance={})
        result.agreement = (
            agreement.detection_agreement
            if manifest.kind == "detector"
            else agreement.top1_agreement
        )
        result.max_abs_error = agreement.max_abs_error
        if load_requests:
            # Untimed warm-up at the same concurrency: the first batches of each new size pay
            # for TensorFlow's per-shape set-up, which would bias whichever version goes first.
            load = (client.address, model, record.variant, inputs, concurrency)
            asyncio.run(_under_load(*load, min(load_requests, 2 * concurrency)))
            before = _batch_totals(metrics_url, model, record.version) if metrics_url else None
            latencies, wall = asyncio.run(_under_load(*load, load_requests))
            result.load_concurrency = concurrency
            result.load_images_per_s = len(latencies) / wall
            result.load_p50_ms, result.load_p99_ms = _percentiles(latencies)
            if before is not None and metrics_url:
                after = _batch_totals(metrics_url, model, record.version)
                batches = after[1] - before[1]
                result.mean_batch_size = (after[0] - before[0]) / batches if batches else None
    return results


def _fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}{suffix}"


def _table(title: str, columns: Sequence[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for name in columns:
        table.add_column(
            name,
            justify="left" if name in ("variant", "status") else "right",
            no_wrap=name == "variant",
        )
    return table


def comparison_table(results: Sequence[VersionResult], title: str) -> Table:
    """One model's versions: size, sequential latency and throughput, agreement with v1."""
    table = _table(
        title, ("version", "variant", "status", "size MB", "p50 ms", "p99 ms", "img/s", "agree")
    )
    for r in results:
        table.add_row(
            str(r.version),
            r.variant,
            r.status,
            _fmt(r.size_bytes / 1e6 if r.size_bytes else None, 2),
            _fmt(r.p50_ms),
            _fmt(r.p99_ms),
            _fmt(r.images_per_s, 1),
            _fmt(r.agreement * 100 if r.agreement is not None else None, 1, "%"),
        )
    return table


def load_table(results: Sequence[VersionResult], title: str) -> Table:
    """One model's served versions under load: throughput, latency, batches formed."""
    table = _table(
        title, ("version", "variant", "in flight", "img/s", "p50 ms", "p99 ms", "mean batch")
    )
    for r in results:
        if r.load_images_per_s is None:
            continue
        table.add_row(
            str(r.version),
            r.variant,
            str(r.load_concurrency),
            _fmt(r.load_images_per_s, 1),
            _fmt(r.load_p50_ms),
            _fmt(r.load_p99_ms),
            _fmt(r.mean_batch_size, 1),
        )
    return table


def skipped_notes(results: Sequence[VersionResult]) -> list[str]:
    """One line per distinct reason a version was not served (which variants, and why)."""
    reasons: dict[str, list[str]] = {}
    for r in results:
        if r.status != "ok":
            reasons.setdefault(f"{r.status}: {r.reason}", []).append(f"{r.model} v{r.version}")
    return [f"{', '.join(where)} {why}" for why, where in reasons.items()]


def write_results(results: Sequence[VersionResult], path: Path) -> Path:
    """``results.json`` (per-request latencies included) and ``report.md`` next to it."""
    atomic_write_json(path, {"versions": [asdict(r) for r in results]})
    lines = [
        (
            "| model | version | variant | status | size MB | p50 ms | p99 ms | img/s | agreement "
            "| img/s under load | mean batch |"
        ),
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.model} | {r.version} | {r.variant} | {r.status} | "
            f"{_fmt(r.size_bytes / 1e6 if r.size_bytes else None)} | {_fmt(r.p50_ms)} | "
            f"{_fmt(r.p99_ms)} | {_fmt(r.images_per_s, 1)} | "
            f"{_fmt(r.agreement * 100 if r.agreement is not None else None, 1, '%')} | "
            f"{_fmt(r.load_images_per_s, 1)} | {_fmt(r.mean_batch_size, 1)} |"
        )
    notes = [f"- {note}" for note in skipped_notes(results)]
    atomic_write_text(
        path.with_name("report.md"),
        "# tfsuite comparison\n\n"
        + "\n".join(lines)
        + "\n"
        + ("\n" + "\n".join(notes) + "\n" if notes else ""),
    )
    return path
