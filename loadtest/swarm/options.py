"""The ``--tfs-*`` options, registered on Locust's own parser (``init_command_line_parser``).

They show in the web UI's custom parameters (Locust lists every option added here) and are
sent by the master to its workers with each spawn message, so a worker needs only
``-f`` and ``--master-host``. :meth:`SwarmSettings.from_options` turns them into typed
settings and says in one line what is wrong with them.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfsuite.errors import UsageError

__all__ = ["DEFAULT_DEADLINE_MS", "DEFAULT_STEP_S", "SwarmSettings", "add_arguments"]

#: Per-call gRPC deadline / REST timeout unless --tfs-deadline-ms says otherwise.
DEFAULT_DEADLINE_MS = 10_000.0
#: Length of one load-shape stage unless --tfs-step-time says otherwise.
DEFAULT_STEP_S = 30.0


def add_arguments(parser: Any) -> None:
    """Register the options on Locust's parser (``events.init_command_line_parser``)."""
    # On the parser itself, not an argument group: only Locust's own add_argument marks an
    # option for the web UI's custom parameters.
    group = parser
    group.add_argument("--tfs-model", default="", help="model name on the server (required)")
    group.add_argument(
        "--tfs-versions", default="", help="comma list of versions to load, e.g. 1,2"
    )
    group.add_argument(
        "--tfs-labels", default="", help="comma list of version labels, e.g. original,weight_quant"
    )
    group.add_argument(
        "--tfs-weights", default="", help="traffic split across the versions/labels, e.g. 3,1"
    )
    group.add_argument("--tfs-batch-size", type=int, default=1, help="rows per request")
    group.add_argument(
        "--tfs-inputs",
        default="",
        help="directory of .npy/.npz/images sent as inputs (default: synthetic, "
        "shaped from GetModelMetadata)",
    )
    group.add_argument("--tfs-signature", default="", help="signature name (serving_default)")
    group.add_argument(
        "--tfs-deadline-ms",
        type=float,
        default=DEFAULT_DEADLINE_MS,
        help="per-request deadline (gRPC) / timeout (REST)",
    )
    group.add_argument(
        "--tfs-rest",
        action="store_true",
        default=False,
        help="TF Serving's REST API (--host http://HOST:8501) instead of gRPC (--host HOST:8500)",
    )
    group.add_argument(
        "--tfs-steps",
        default="",
        help="load shape: stepped concurrency, users per step, e.g. 4,8,16",
    )
    group.add_argument(
        "--tfs-rates",
        default="",
        help="load shape: stepped arrival rate, requests/s per step, e.g. 50,100,200",
    )
    group.add_argument(
        "--tfs-rate-per-user",
        type=float,
        default=10.0,
        help="with --tfs-rates: requests/s one user sends (users = rate / this)",
    )
    group.add_argument(
        "--tfs-sequential",
        action="store_true",
        default=False,
        help="load shape: one stage per version in turn (server metrics stay separable)",
    )
    group.add_argument(
        "--tfs-step-time", type=float, default=DEFAULT_STEP_S, help="seconds per shape stage"
    )
    group.add_argument(
        "--tfs-metrics-url",
        default="",
        help="the server's Prometheus endpoint, scraped at each stage boundary "
        "(default: none for gRPC; REST: HOST/monitoring/prometheus/metrics)",
    )
    # Locust binds its web UI to every interface by default; this suite binds 127.0.0.1
    # unless told otherwise (--web-host 0.0.0.0), like its servers.
    parser.set_defaults(web_host="127.0.0.1")


def _items(text: str) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def _numbers(option: str, text: str, kind: type) -> list[Any]:
    try:
        values = [kind(item) for item in _items(text)]
    except ValueError:
        raise UsageError(f"{option} {text!r}: give a comma list of numbers") from None
    if any(v <= 0 for v in values):
        raise UsageError(f"{option} {text!r}: every value must be positive")
    return values


@dataclass(frozen=True)
class SwarmSettings:
    """The ``--tfs-*`` options, checked."""

    model: str
    versions: tuple[int, ...]
    labels: tuple[str, ...]
    weights: tuple[float, ...]
    batch_size: int
    inputs: Path | None
    signature: str | None
    deadline_s: float
    rest: bool
    steps: tuple[int, ...]
    rates: tuple[float, ...]
    rate_per_user: float
    sequential: bool
    step_s: float
    metrics_url: str | None

    @property
    def shaped(self) -> bool:
        """Whether a load shape drives the run (else Locust's -u/-r/-t do)."""
        return bool(self.steps or self.rates or self.sequential)

    @classmethod
    def from_options(cls, options: argparse.Namespace) -> SwarmSettings:
        get = lambda name, default=None: getattr(options, name, default)
        model = (get("tfs_model") or "").strip()
        if not model:
            raise UsageError(
                "--tfs-model is required: the model name on the server, e.g. "
                "--tfs-model mobilenet_v2 (see locust -f ... --help)"
            )
        versions = tuple(_numbers("--tfs-versions", get("tfs_versions", ""), int))
        labels = tuple(_items(get("tfs_labels", "")))
        if versions and labels:
            raise UsageError("give --tfs-versions or --tfs-labels, not both")
        weights = tuple(_numbers("--tfs-weights", get("tfs_weights", ""), float))
        targets = len(versions or labels) or 1
        if weights and len(weights) != targets:
            raise UsageError(
                f"--tfs-weights has {len(weights)} value(s) for {targets} version(s)/label(s)"
            )
        batch = get("tfs_batch_size", 1)
        batch_size = 1 if batch is None else int(batch)
        if batch_size < 1:
            raise UsageError("--tfs-batch-size must be at least 1")
        deadline = get("tfs_deadline_ms", DEFAULT_DEADLINE_MS)
        deadline_ms = DEFAULT_DEADLINE_MS if deadline is None else float(deadline)
        if deadline_ms <= 0:
            raise UsageError("--tfs-deadline-ms must be positive")
        steps = tuple(_numbers("--tfs-steps", get("tfs_steps", ""), int))
        rates = tuple(_numbers("--tfs-rates", get("tfs_rates", ""), float))
        if steps and rates:
            raise UsageError(
                "give --tfs-steps (concurrency) or --tfs-rates (arrival rate), not both"
            )
        step_s = float(get("tfs_step_time", DEFAULT_STEP_S) or DEFAULT_STEP_S)
        rate_per_user = float(get("tfs_rate_per_user", 10.0) or 10.0)
        if step_s <= 0 or rate_per_user <= 0:
            raise UsageError("--tfs-step-time and --tfs-rate-per-user must be positive")
        inputs = (get("tfs_inputs") or "").strip()
        return cls(
            model=model,
            versions=versions,
            labels=labels,
            weights=weights,
            batch_size=batch_size,
            inputs=Path(inputs) if inputs else None,
            signature=(get("tfs_signature") or "").strip() or None,
            deadline_s=deadline_ms / 1e3,
            rest=bool(get("tfs_rest", False)),
            steps=steps,
            rates=rates,
            rate_per_user=rate_per_user,
            sequential=bool(get("tfs_sequential", False)),
            step_s=step_s,
            metrics_url=(get("tfs_metrics_url") or "").strip() or None,
        )
