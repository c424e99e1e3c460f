"""Served comparison of one model's versions: the same images to every version, over gRPC.

For each loadable version of a base path (by its label, so the request names the variant
the way a user would), the same images go through ``tfsuite.clients`` one request at a
time; the client-side latency of each request is kept, and the outputs are compared with
version 1's: top-1 agreement for classifiers, IoU-matched detection agreement for
detectors, max abs error for anything else. This is the table ``tfsuite demo`` ends with.

Only gRPC is used here (clients never import the server); the caller starts the server.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from rich.table import Table

from tfsuite.clients.grpc_client import TFServingClient
from tfsuite.clients.images import ImageReader
from tfsuite.clients.pipeline import InputPlan, Preprocess, plan_input, signature_of
from tfsuite.export.manifest import VariantsManifest
from tfsuite.export.validate import detection_agreement

__all__ = ["VersionResult", "compare_versions", "comparison_table", "skipped_notes", "write_results"]


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
    latencies_ms: list[float] = field(default_factory=list, repr=False)


def _agreement(kind: str, ref: dict[str, np.ndarray], out: dict[str, np.ndarray]) -> float | None:
    if kind == "detector":
        return detection_agreement(ref, out)[0]
    if kind == "classifier" and len(ref) == 1:
        (name,) = ref
        return float(np.mean(np.argmax(ref[name], -1) == np.argmax(out[name], -1)))
    return None


def _max_abs(ref: dict[str, np.ndarray], out: dict[str, np.ndarray]) -> float:
    errors = [
        float(np.max(np.abs(ref[k].astype(np.float64) - out[k].astype(np.float64))))
        for k in ref
        if ref[k].dtype.kind == "f" and ref[k].size
    ]
    return max(errors, default=0.0)


def compare_versions(
    client: TFServingClient,
    model: str,
    manifest: VariantsManifest,
    images: Sequence[Path],
    *,
    preprocess: Preprocess = "mobilenet",
    resize: tuple[int, int] | None = None,
) -> list[VersionResult]:
    """Send ``images`` (one per request) to every version of ``model``; compare with version 1."""
    sig = signature_of(client.metadata(model), None)
    plan: InputPlan = plan_input(sig, model, None, preprocess)
    with ImageReader(list(images), resize) as reader:
        pixels = [item.pixels for item in reader if item.pixels is not None]
    tensors = [plan.tensor([p]) for p in pixels]

    results: list[VersionResult] = []
    reference: dict[str, np.ndarray] | None = None
    for record in manifest.variants:
        result = VersionResult(
            model, record.version, record.variant, record.status, record.reason, record.size_bytes
        )
        results.append(result)
        if not record.loadable:
            continue
        client.predict({plan.alias: tensors[0]}, model, label=record.variant)  # warm the path
        outputs: list[dict[str, np.ndarray]] = []
        for tensor in tensors:
            t0 = time.perf_counter()
            outputs.append(client.predict({plan.alias: tensor}, model, label=record.variant))
            result.latencies_ms.append((time.perf_counter() - t0) * 1000.0)
        result.requests = len(tensors)
        lat = np.asarray(result.latencies_ms)
        result.p50_ms = float(np.percentile(lat, 50))
        result.p99_ms = float(np.percentile(lat, 99))
        result.images_per_s = 1000.0 * len(tensors) / float(lat.sum())
        stacked = {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}
        if reference is None:
            reference = stacked  # the first loadable version (1, original) is the reference
        result.agreement = _agreement(manifest.kind, reference, stacked)
        result.max_abs_error = _max_abs(reference, stacked)
    return results


def _fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}{suffix}"


def comparison_table(results: Sequence[VersionResult], title: str) -> Table:
    """One model's versions: size, served latency, throughput, agreement with version 1."""
    table = Table(title=title, title_justify="left")
    for name in ("version", "variant", "status", "size MB", "p50 ms", "p99 ms", "img/s", "agree"):
        table.add_column(name, justify="left" if name in ("variant", "status") else "right", no_wrap=name == "variant")
    for r in results:
        table.add_row(
            str(r.version), r.variant, r.status,
            _fmt(r.size_bytes / 1e6 if r.size_bytes else None, 2),
            _fmt(r.p50_ms), _fmt(r.p99_ms), _fmt(r.images_per_s, 1),
            _fmt(r.agreement * 100 if r.agreement is not None else None, 1, "%"),
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
    from tfsuite.clients.coco import write_json_atomic

    write_json_atomic(path, {"versions": [asdict(r) for r in results]})
    lines = [
        "| model | version | variant | status | size MB | p50 ms | p99 ms | img/s | agreement |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.model} | {r.version} | {r.variant} | {r.status} | "
            f"{_fmt(r.size_bytes / 1e6 if r.size_bytes else None)} | {_fmt(r.p50_ms)} | "
            f"{_fmt(r.p99_ms)} | {_fmt(r.images_per_s, 1)} | "
            f"{_fmt(r.agreement * 100 if r.agreement is not None else None, 1, '%')} |"
        )
    report = path.with_name("report.md")
    report.write_text("# tfsuite comparison\n\n" + "\n".join(lines) + "\n")
    json.loads(path.read_text())  # what we wrote parses
    return path
