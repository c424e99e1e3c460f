"""Server metrics with TF Serving's Prometheus names, one ``ServerMetrics`` per server.

TF Serving exports its monitoring metrics with ``/`` turned into ``:``, e.g.
``:tensorflow:serving:request_count{model_name="m",status="OK"} 3`` — counters keep their
name (no ``_total`` suffix) and latencies are microsecond histograms. ``prometheus_client``
accepts colon names but its text writer appends ``_total`` to counters, so this module
keeps its own small counters/histograms and writes the text exposition itself (``render``);
``registry`` still offers the same numbers as a per-server
``prometheus_client.CollectorRegistry`` for tools built on that library.

Label values follow TF Serving: ``API`` is ``Predict`` / ``Classify`` / ``Regress`` /
``MultiInference``, ``entrypoint`` is ``GRPC`` / ``REST``, ``status`` is the status code name
(``OK``, ``INVALID_ARGUMENT``, ...). ``runtime`` is ``TF2`` (TF Serving says ``TF1`` for its
session runtime, ``TFRT`` for TFRT; this server calls TF2 concrete functions).

Deliberate difference: every per-model metric also carries ``model_version`` (TF Serving
labels nothing by version — tensorflow/serving#1970), so per-variant latency can be read
off the server. Aggregate with ``sum without (model_version)`` to get TF Serving's series.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterator, Sequence

from prometheus_client.core import CollectorRegistry, Metric
from prometheus_client.registry import Collector

from tfsuite.serving_configs.monitoring import (
    INPUT_BATCH_SIZE,
    PADDING_SIZE,
    PROCESSED_BATCH_SIZE,
    QUEUING_LATENCY,
    REQUEST_COUNT,
    REQUEST_EXAMPLE_COUNT_TOTAL,
    REQUEST_EXAMPLE_COUNTS,
    REQUEST_LATENCY,
    RUNTIME_LATENCY,
)

__all__ = [
    "INPUT_BATCH_SIZE",
    "PADDING_SIZE",
    "PROCESSED_BATCH_SIZE",
    "QUEUING_LATENCY",
    "REQUEST_COUNT",
    "REQUEST_EXAMPLE_COUNTS",
    "REQUEST_EXAMPLE_COUNT_TOTAL",
    "REQUEST_LATENCY",
    "RUNTIME_LATENCY",
    "CounterFamily",
    "HistogramFamily",
    "ServerMetrics",
    "exponential_buckets",
]


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """``monitoring::Buckets::Exponential`` (upper bounds; +Inf is implicit)."""
    # Rounded to 6 significant digits so the `le` labels read well (32.4, not 32.400000000000006).
    return tuple(float(f"{start * factor**i:.6g}") for i in range(count))


# TF Serving's latency samplers use Exponential(10, 1.8, 33) microseconds.
_LATENCY_BUCKETS = exponential_buckets(10, 1.8, 33)
_BATCH_BUCKETS = tuple(float(2**i) for i in range(14))


def _fmt(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class CounterFamily:
    """A counter with fixed label names; ``inc(values)`` is a dict update under a lock."""

    kind = "counter"

    def __init__(self, name: str, doc: str, labelnames: Sequence[str]) -> None:
        self.name, self.doc, self.labelnames = name, doc, tuple(labelnames)
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def inc(self, labels: tuple[str, ...], amount: float = 1.0) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, labels: tuple[str, ...]) -> float:
        return self._values.get(labels, 0.0)

    def lines(self) -> Iterator[str]:
        with self._lock:
            items = sorted(self._values.items())
        for values, total in items:
            yield f"{self.name}{_labels(self.labelnames, values)} {_fmt(total)}"

    def samples(self) -> Iterator[tuple[str, dict[str, str], float]]:
        with self._lock:
            items = sorted(self._values.items())
        for values, total in items:
            yield self.name, dict(zip(self.labelnames, values)), total


class HistogramFamily:
    """A cumulative histogram per label set (Prometheus ``_bucket``/``_sum``/``_count``)."""

    kind = "histogram"

    def __init__(
        self, name: str, doc: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self.name, self.doc, self.labelnames = name, doc, tuple(labelnames)
        self.buckets = tuple(buckets)
        self._data: dict[tuple[str, ...], list[float]] = {}  # counts per bucket + [+Inf, sum]
        self._lock = threading.Lock()

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        index = bisect.bisect_left(self.buckets, value)
        with self._lock:
            row = self._data.get(labels)
            if row is None:
                row = self._data[labels] = [0.0] * (len(self.buckets) + 2)
            row[index] += 1
            row[-1] += value

    def count(self, labels: tuple[str, ...]) -> int:
        row = self._data.get(labels)
        return int(sum(row[:-1])) if row else 0

    def sum(self, labels: tuple[str, ...]) -> float:
        row = self._data.get(labels)
        return row[-1] if row else 0.0

    def _rows(self) -> list[tuple[tuple[str, ...], list[float]]]:
        with self._lock:
            return [(k, list(v)) for k, v in sorted(self._data.items())]

    def samples(self) -> Iterator[tuple[str, dict[str, str], float]]:
        for values, row in self._rows():
            labels = dict(zip(self.labelnames, values))
            cumulative = 0.0
            for bound, n in zip((*self.buckets, math.inf), row[:-1]):
                cumulative += n
                yield f"{self.name}_bucket", {**labels, "le": _fmt(bound)}, cumulative
            yield f"{self.name}_sum", labels, row[-1]
            yield f"{self.name}_count", labels, cumulative

    def lines(self) -> Iterator[str]:
        for name, labels, value in self.samples():
            le = labels.pop("le", None)
            extra = f'le="{le}"' if le is not None else ""
            yield f"{name}{_labels(list(labels), list(labels.values()), extra)} {_fmt(value)}"


class _Collector(Collector):
    def __init__(self, families: Sequence[CounterFamily | HistogramFamily]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        for fam in self._families:
            metric = Metric(fam.name, fam.doc, fam.kind)
            for name, labels, value in fam.samples():
                metric.add_sample(name, labels, value)
            yield metric


class ServerMetrics:
    """The metrics of one server (a fresh instance per server: nothing global)."""

    def __init__(self) -> None:
        model = ("model_name", "model_version")
        self.request_count = CounterFamily(
            REQUEST_COUNT,
            "The total number of requests.",
            ("model_name", "model_version", "status"),
        )
        self.request_latency = HistogramFamily(
            REQUEST_LATENCY,
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            (*model, "API", "entrypoint"),
            _LATENCY_BUCKETS,
        )
        self.runtime_latency = HistogramFamily(
            RUNTIME_LATENCY,
            "Distribution of wall time (in microseconds) for Tensorflow runtime.",
            (*model, "API", "runtime"),
            _LATENCY_BUCKETS,
        )

        def batching(name: str, help_text: str, buckets: Sequence[float]) -> HistogramFamily:
            # TF Serving's batching histograms are per model; ours add model_version.
            return HistogramFamily(name, help_text, model, buckets)

        self.input_batch_size = batching(
            INPUT_BATCH_SIZE, "Tracks the batch size distribution on the inputs.", _BATCH_BUCKETS
        )
        self.processed_batch_size = batching(
            PROCESSED_BATCH_SIZE,
            "Tracks the batch size distribution on processing (after padding).",
            _BATCH_BUCKETS,
        )
        self.padding_size = batching(
            PADDING_SIZE, "Tracks the padding size distribution on batches.", _BATCH_BUCKETS
        )
        self.queuing_latency = batching(
            QUEUING_LATENCY,
            "Distribution of wall time spent (in microseconds) in queuing.",
            _LATENCY_BUCKETS,
        )
        # Classify / Regress / MultiInference: tf.Examples per request (TF Serving's label is
        # "model", not "model_name").
        self.request_example_counts = HistogramFamily(
            REQUEST_EXAMPLE_COUNTS,
            "The number of tensorflow.Examples per request.",
            ("model", "model_version"),
            exponential_buckets(1, 2, 15),
        )
        self.request_example_count_total = CounterFamily(
            REQUEST_EXAMPLE_COUNT_TOTAL,
            "The total number of tensorflow.Examples.",
            ("model", "model_version"),
        )
        self.families: tuple[CounterFamily | HistogramFamily, ...] = (
            self.request_count,
            self.request_latency,
            self.runtime_latency,
            self.input_batch_size,
            self.processed_batch_size,
            self.padding_size,
            self.queuing_latency,
            self.request_example_counts,
            self.request_example_count_total,
        )
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self.families))

    def render(self) -> bytes:
        """Prometheus text exposition (format 0.0.4), TF Serving's metric names."""
        out: list[str] = []
        for fam in self.families:
            out.append(f"# HELP {fam.name} {fam.doc}")
            out.append(f"# TYPE {fam.name} {fam.kind}")
            out.extend(fam.lines())
        return ("\n".join(out) + "\n").encode()

    #: ``Content-Type`` for ``render()``'s output.
    CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
