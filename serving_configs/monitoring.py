"""``--monitoring_config_file``: TF Serving's ``MonitoringConfig`` text proto.

``prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }`` exposes the
Prometheus text exposition on the REST port at ``path`` (TF Serving's default when empty).
"""

from __future__ import annotations

import os
from pathlib import Path

from google.protobuf.message import Message

from tfsuite.serving_configs.errors import ConfigError
from tfsuite.serving_configs.project_protos import MonitoringConfig, PrometheusConfig
from tfsuite.serving_configs.textproto import parse_text_proto, read_text_proto, write_text_proto

__all__ = [
    "DEFAULT_METRICS_PATH",
    "INPUT_BATCH_SIZE",
    "LOAD_LATENCY",
    "PADDING_SIZE",
    "PROCESSED_BATCH_SIZE",
    "QUEUING_LATENCY",
    "REQUEST_COUNT",
    "REQUEST_EXAMPLE_COUNTS",
    "REQUEST_EXAMPLE_COUNT_TOTAL",
    "REQUEST_LATENCY",
    "RUNTIME_LATENCY",
    "MonitoringConfig",
    "PrometheusConfig",
    "metrics_path",
    "monitoring_config",
    "parse_monitoring_config",
    "read_monitoring_config",
    "write_monitoring_config",
]

#: ``PrometheusExporter::kPrometheusPath``: used when ``prometheus_config.path`` is empty.
DEFAULT_METRICS_PATH = "/monitoring/prometheus/metrics"

# TF Serving's metric family names as exported there (``/`` turned into ``:``), one list
# for the suite's server (which exports them) and the load tester (which scrapes them).
REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
RUNTIME_LATENCY = ":tensorflow:serving:runtime_latency"
INPUT_BATCH_SIZE = ":tensorflow:serving:batching_session:input_batch_size"
PROCESSED_BATCH_SIZE = ":tensorflow:serving:batching_session:processed_batch_size"
PADDING_SIZE = ":tensorflow:serving:batching_session:padding_size"
QUEUING_LATENCY = ":tensorflow:serving:batching_session:queuing_latency"
REQUEST_EXAMPLE_COUNTS = ":tensorflow:serving:request_example_counts"
REQUEST_EXAMPLE_COUNT_TOTAL = ":tensorflow:serving:request_example_count_total"
#: TF Serving's SavedModel load time (microseconds, cumulative per model path).
LOAD_LATENCY = ":tensorflow:cc:saved_model:load_latency"


def monitoring_config(enable: bool = True, path: str = DEFAULT_METRICS_PATH) -> Message:
    """A validated ``MonitoringConfig`` with Prometheus on ``path``."""
    msg = MonitoringConfig(prometheus_config=PrometheusConfig(enable=enable, path=path))
    validate_monitoring_config(msg)
    return msg


def metrics_path(config: Message) -> str | None:
    """The HTTP path metrics are served on, or None when Prometheus is not enabled."""
    prom = config.prometheus_config
    if not prom.enable:
        return None
    return prom.path or DEFAULT_METRICS_PATH


def validate_monitoring_config(config: Message) -> None:
    """The path is matched against request URIs, so it must be an absolute URL path."""
    path = config.prometheus_config.path
    if path and not path.startswith("/"):
        raise ConfigError(f"prometheus_config.path must start with '/'; got {path!r}")
    if any(c in path for c in "?# \t\n"):
        raise ConfigError(f"prometheus_config.path must be a plain URL path; got {path!r}")


def parse_monitoring_config(text: str, *, source: str = "<text>") -> Message:
    """Parse and validate a text-format ``MonitoringConfig``."""
    return parse_text_proto(text, MonitoringConfig(), source, validate_monitoring_config)


def read_monitoring_config(path: str | os.PathLike[str]) -> Message:
    """Read and validate a ``--monitoring_config_file``; ``ConfigError`` on any problem."""
    return read_text_proto(path, MonitoringConfig(), validate_monitoring_config)


def write_monitoring_config(path: str | os.PathLike[str], config: Message | None = None) -> Path:
    """Write ``config`` (default: Prometheus enabled on the default path) atomically."""
    msg = config if config is not None else monitoring_config()
    if msg.DESCRIPTOR.full_name != MonitoringConfig.DESCRIPTOR.full_name:
        raise TypeError(
            f"expected tensorflow.serving.MonitoringConfig, got {msg.DESCRIPTOR.full_name}"
        )
    return write_text_proto(path, msg, validate_monitoring_config)
