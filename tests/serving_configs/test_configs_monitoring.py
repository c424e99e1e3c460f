"""MonitoringConfig: TF Serving's message, default path, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfsuite.serving_configs.errors import ConfigError
from tfsuite.serving_configs.monitoring import (
    DEFAULT_METRICS_PATH,
    MonitoringConfig,
    metrics_path,
    monitoring_config,
    parse_monitoring_config,
    read_monitoring_config,
    write_monitoring_config,
)


def test_message_schema_matches_tf_serving() -> None:
    desc = MonitoringConfig.DESCRIPTOR
    assert desc.full_name == "tensorflow.serving.MonitoringConfig"
    prom = desc.fields_by_name["prometheus_config"]
    assert prom.number == 1 and prom.message_type.full_name == "tensorflow.serving.PrometheusConfig"
    fields = {f.name: f.number for f in prom.message_type.fields}
    assert fields == {"enable": 1, "path": 2}


def test_documented_example_and_default_path() -> None:
    cfg = parse_monitoring_config(
        'prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }'
    )
    assert metrics_path(cfg) == "/monitoring/prometheus/metrics"
    enabled = parse_monitoring_config("prometheus_config { enable: true }")
    assert metrics_path(enabled) == DEFAULT_METRICS_PATH
    assert metrics_path(parse_monitoring_config("")) is None


def test_write_read_round_trip(tmp_path: Path) -> None:
    path = write_monitoring_config(tmp_path / "monitoring.config")
    assert path.read_text() == (
        'prometheus_config {\n  enable: true\n  path: "/monitoring/prometheus/metrics"\n}\n'
    )
    assert read_monitoring_config(path) == monitoring_config()
    custom = monitoring_config(path="/metrics")
    write_monitoring_config(path, custom)
    assert metrics_path(read_monitoring_config(path)) == "/metrics"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('prometheus_config { enable: true path: "metrics" }', "must start with '/'"),
        ('prometheus_config { enable: true path: "/m?x=1" }', "plain URL path"),
        ("prometheus_config { enabled: true }", 'no field named "enabled"'),
    ],
)
def test_validation(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_monitoring_config(text)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        read_monitoring_config(tmp_path / "monitoring.config")
