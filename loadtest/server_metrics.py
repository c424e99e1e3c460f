"""The server's own view of a load step: scrape ``/monitoring/prometheus/metrics``, take deltas.

TF Serving (and this suite's embedded server) export cumulative counters and histograms;
what happened during a step is the difference between a snapshot taken at its start and
one at its end (or at each window boundary). :func:`server_deltas` turns two snapshots into
:class:`~tfsuite.loadtest.results.ServerDeltas` for one model version.

This suite's server labels every per-model series with ``model_version``; real TF Serving
labels nothing by version (tensorflow/serving#1970), so there the deltas cover the whole
model (``per_version`` false) and only stay per version because versions are measured one
after another. Batching histograms are labelled ``model_name`` on TF Serving and ``model``
on some series; both are accepted.

An unreachable or unparsable endpoint yields ``None`` snapshots, never an error: the
server-side view is optional (the load still runs).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tfsuite.loadtest.results import HistogramDelta, ServerDeltas
from tfsuite.serving_configs.monitoring import (
    DEFAULT_METRICS_PATH,
    INPUT_BATCH_SIZE,
    LOAD_LATENCY,
    PADDING_SIZE,
    PROCESSED_BATCH_SIZE,
    QUEUING_LATENCY,
    REQUEST_COUNT,
    REQUEST_LATENCY,
    RUNTIME_LATENCY,
)

__all__ = [
    "DEFAULT_METRICS_PATH",
    "HISTOGRAMS",
    "INPUT_BATCH_SIZE",
    "LOAD_LATENCY",
    "MAX_SAMPLES",
    "PADDING_SIZE",
    "PROCESSED_BATCH_SIZE",
    "QUEUING_LATENCY",
    "REQUEST_COUNT",
    "REQUEST_LATENCY",
    "RUNTIME_LATENCY",
    "MetricsScraper",
    "Snapshot",
    "load_seconds",
    "server_deltas",
]

log = logging.getLogger(__name__)


#: ServerDeltas field -> histogram family.
HISTOGRAMS: dict[str, str] = {
    "request_latency_us": REQUEST_LATENCY,
    "runtime_latency_us": RUNTIME_LATENCY,
    "input_batch_size": INPUT_BATCH_SIZE,
    "processed_batch_size": PROCESSED_BATCH_SIZE,
    "padding_size": PADDING_SIZE,
    "queuing_latency_us": QUEUING_LATENCY,
}
_WANTED = frozenset({REQUEST_COUNT, LOAD_LATENCY, *HISTOGRAMS.values()})
#: A scrape keeps at most this many samples (a server's label sets are bounded here too).
MAX_SAMPLES = 50_000
_MODEL_LABELS = ("model_name", "model")

Key = tuple[str, tuple[tuple[str, str], ...]]


@dataclass
class Snapshot:
    """The wanted families' samples at one instant: (sample name, labels) -> value."""

    values: dict[Key, float] = field(default_factory=dict)
    declared: set[str] = field(default_factory=set)
    """Families the server declares (``# TYPE``), samples or not."""

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        snap = cls()
        # Only the wanted families go through the parser (a server may export hundreds).
        wanted = "\n".join(line for line in text.splitlines() if _family_of(line) in _WANTED)
        for family in text_string_to_metric_families(wanted):
            snap.declared.add(family.name)
            for sample in family.samples:
                if len(snap.values) >= MAX_SAMPLES:
                    return snap
                name = sample.name
                if family.type == "counter" and name == family.name + "_total":
                    name = family.name  # TF Serving's counters carry no _total suffix
                snap.values[(name, tuple(sorted(sample.labels.items())))] = sample.value
        return snap

    def select(self, name: str, model: str, version: int | None) -> tuple[dict[Key, float], bool]:
        """Samples named ``name`` for ``model`` (and ``version`` where the series carry a
        ``model_version`` label); and whether that version filter applied."""
        mine = {
            k: v
            for k, v in self.values.items()
            if k[0] == name and _label(k, _MODEL_LABELS) in (model, None)
        }
        per_version = version is not None and any(
            _label(k, ("model_version",)) is not None for k in mine
        )
        if per_version:
            mine = {k: v for k, v in mine.items() if _label(k, ("model_version",)) == str(version)}
        return mine, per_version


def _family_of(line: str) -> str:
    if line.startswith("#"):
        parts = line.split(" ", 3)
        return parts[2] if len(parts) > 2 else ""
    name = line.split("{", 1)[0].split(" ", 1)[0]
    for suffix in ("_bucket", "_sum", "_count", "_total"):
        if name.endswith(suffix) and name[: -len(suffix)] in _WANTED:
            return name[: -len(suffix)]
    return name


def _label(key: Key, names: Iterable[str]) -> str | None:
    labels = dict(key[1])
    for name in names:
        if name in labels:
            return labels[name]
    return None


class MetricsScraper:
    """Snapshots of one server's Prometheus endpoint (``None`` when it cannot be read)."""

    def __init__(self, url: str | None, timeout: float = 2.0) -> None:
        self.url = url
        self._http = httpx.Client(timeout=timeout) if url else None
        self.reachable: bool | None = None
        """None until the first scrape; then whether the last one worked."""

    def snapshot(self) -> Snapshot | None:
        if self._http is None or self.url is None:
            return None
        try:
            response = self._http.get(self.url)
            response.raise_for_status()
            snap = Snapshot.parse(response.text)
        except (httpx.HTTPError, ValueError) as exc:
            if self.reachable is not False:
                log.warning(
                    "server metrics at %s not readable (%s); going on without", self.url, exc
                )
            self.reachable = False
            return None
        self.reachable = True
        return snap

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> MetricsScraper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _histogram_delta(
    before: Snapshot, after: Snapshot, family: str, model: str, version: int | None
) -> HistogramDelta | None:
    now, _ = after.select(family + "_count", model, version)
    if not now:
        # Declared but empty (e.g. batching off: no batch was formed): a zero delta, not
        # an unknown one.
        return HistogramDelta(count=0.0, sum=0.0) if family in after.declared else None
    then, _ = before.select(family + "_count", model, version)
    count = sum(now.values()) - sum(then.get(k, 0.0) for k in now)
    sums_now, _ = after.select(family + "_sum", model, version)
    sums_then, _ = before.select(family + "_sum", model, version)
    total = sum(sums_now.values()) - sum(sums_then.get(k, 0.0) for k in sums_now)
    buckets_now, _ = after.select(family + "_bucket", model, version)
    buckets_then, _ = before.select(family + "_bucket", model, version)
    buckets: dict[str, float] = {}
    for key, value in buckets_now.items():
        le = dict(key[1]).get("le", "+Inf")
        buckets[le] = buckets.get(le, 0.0) + value - buckets_then.get(key, 0.0)
    ordered = dict(sorted(buckets.items(), key=lambda kv: _bound(kv[0])))
    return HistogramDelta(count=count, sum=total, buckets=ordered)


def _bound(le: str) -> float:
    try:
        return float(le)
    except ValueError:
        return math.inf


def server_deltas(
    before: Snapshot | None, after: Snapshot | None, model: str, version: int | None
) -> ServerDeltas | None:
    """What the server counted between two snapshots, for one model (version)."""
    if before is None or after is None:
        return None
    counts, per_version = after.select(REQUEST_COUNT, model, version)
    then, _ = before.select(REQUEST_COUNT, model, version)
    by_status: dict[str, float] = {}
    for key, value in counts.items():
        status = dict(key[1]).get("status", "")
        delta = value - then.get(key, 0.0)
        if delta:
            by_status[status] = by_status.get(status, 0.0) + delta
    deltas = ServerDeltas(per_version=per_version, request_count_by_status=by_status)
    for attr, family in HISTOGRAMS.items():
        setattr(deltas, attr, _histogram_delta(before, after, family, model, version))
    return deltas


def load_seconds(snapshot: Snapshot | None, model: str, version: int) -> float | None:
    """TF Serving's SavedModel load time of one version (its ``model_path`` label is the
    version directory, ``.../<model>/<version>``), when the server exports it."""
    if snapshot is None:
        return None
    values = [
        v
        for k, v in snapshot.values.items()
        if k[0] == LOAD_LATENCY
        and (path := (dict(k[1]).get("model_path") or "").rstrip("/")).endswith(f"/{version}")
        and f"/{model}/" in path + "/"
    ]
    return sum(values) / 1e6 if values else None
