"""The demo's load-test half: a short ``tfsuite compare`` sweep of each model's versions
against the demo's embedded server, combined into one ``results.json`` and rendered.

Each model gets two ``tfsuite compare`` runs in a child process (the load generator never
shares a process with TensorFlow, which the demo has loaded for the export): a closed-loop
sweep with the p99 SLO set (the SLO search bisects concurrency between the sweep's own
steps), then one Poisson open-loop rate at half the reference version's best closed-loop
throughput (a load it can sustain, so the open-loop figures show queueing, not collapse).
The runs measured one server, one after another, so they combine into one run: steps,
SLO results and intervals side by side, the server's own load log filling in each
version's load time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from tfsuite.errors import TFSuiteError
from tfsuite.export.manifest import VariantsManifest
from tfsuite.loadtest.online.embedded import EmbeddedServer
from tfsuite.loadtest.results import Results, load_results

__all__ = ["SweepSettings", "combine_runs", "open_loop_rate", "sweep_model"]


@dataclass(frozen=True)
class SweepSettings:
    concurrency: tuple[int, ...] = (1, 4, 16)
    slo_p99_ms: float = 100.0
    duration: str = "2s"
    warmup: str = "0.5s"
    window: str = "0.5s"
    max_duration: str = "4s"

    def step_flags(self) -> list[str]:
        return [
            f"--duration={self.duration}",
            f"--warmup={self.warmup}",
            f"--window={self.window}",
            f"--max-duration={self.max_duration}",
        ]


def _compare(args: list[str], console: Console) -> None:
    command = [sys.executable, "-m", "tfsuite", "compare", *args]
    console.print("$ tfsuite compare " + " ".join(args), markup=False, highlight=False)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command, env=env, check=False)
    if done.returncode != 0:
        raise TFSuiteError(f"tfsuite compare failed (exit {done.returncode}); see its output")


def open_loop_rate(closed: Results) -> float:
    """Half the reference version's best stable closed-loop req/s (at least 1 req/s)."""
    reference = min(s.version for s in closed.steps)
    rates = [s.achieved_rps for s in closed.steps if s.version == reference and s.stable]
    rates = rates or [s.achieved_rps for s in closed.steps if s.version == reference]
    return max(1.0, round(max(rates) / 2.0))


def sweep_model(
    server: EmbeddedServer, model: str, out: Path, settings: SweepSettings, console: Console
) -> list[Results]:
    """The closed-loop sweep with the SLO, then one open-loop rate; both runs' results."""
    common = [
        f"--server={server.grpc_address}",
        f"--metrics-url={server.metrics_url}",
        f"--model={model}",
        *settings.step_flags(),
    ]
    _compare(
        [
            *common,
            "--concurrency=" + ",".join(str(c) for c in settings.concurrency),
            f"--slo-p99-ms={settings.slo_p99_ms:g}",
            f"--out={out / 'closed'}",
        ],
        console,
    )
    closed = load_results(out / "closed" / "results.json")
    rate = open_loop_rate(closed)
    _compare([*common, f"--rate={rate:g}", "--poisson", f"--out={out / 'open'}"], console)
    return [closed, load_results(out / "open" / "results.json")]


def combine_runs(
    parts: Sequence[Results],
    server: EmbeddedServer,
    command: str,
    manifests: Mapping[str, VariantsManifest],
) -> Results:
    """Runs against one server, one after another, as one run (see the module docstring);
    the variant names and sizes come from each base path's ``variants.json`` (``--server``
    runs cannot see them)."""
    first = parts[0]
    run = first.run.model_copy(deep=True)
    run.command = command
    run.model = ",".join(dict.fromkeys(p.run.model for p in parts))
    run.started = min(p.run.started for p in parts)
    ends = [p.run.ended for p in parts]
    run.ended = max(e for e in ends if e) if all(ends) else None
    run.complete = all(p.run.complete for p in parts)
    run.incomplete_reason = "; ".join(
        p.run.incomplete_reason for p in parts if p.run.incomplete_reason
    )
    run.server.kind = "embedded"  # the demo started it (compare only saw an address)
    run.server.rest_address = server.rest_address
    run.server.batching = True
    run.settings = {
        **first.run.settings,
        "runs": [{"command": p.run.command, "model": p.run.model} for p in parts],
    }
    versions = {}
    for part in parts:
        for info in part.versions:
            versions.setdefault((info.model, info.version), info.model_copy(deep=True))
    for (model, version), info in versions.items():
        record = (
            next((r for r in manifests[model].variants if r.version == version), None)
            if model in manifests
            else None
        )
        if record is not None:
            info.variant = info.variant or record.variant
            info.label = info.label or record.variant
            info.size_bytes = info.size_bytes if info.size_bytes is not None else record.size_bytes
        load = server.loads_by_model.get(model, {}).get(version)
        if load is not None:
            info.load_seconds = info.load_seconds if info.load_seconds is not None else load.seconds
            if info.rss_delta_bytes is None:
                info.rss_delta_bytes = load.rss_delta
    return Results(
        run=run,
        versions=list(versions.values()),
        steps=[s for p in parts for s in p.steps],
        slo=[s for p in parts for s in p.slo],
        intervals=[i for p in parts for i in p.intervals],
    )
