"""``results.json``: the one contract between measuring and reporting.

Written by ``tfsuite compare`` (the online engine) and by Locust runs
(``loadtest/locustfile.py``); read by ``tfsuite report`` and nothing else. Every latency is
in milliseconds, every rate in requests per second, every size in bytes. A figure that could
not be measured is ``null``, never 0.

    Results
    ├── run          what ran, where, when, and whether it finished (``complete``)
    ├── versions[]   one entry per (model, version): variant, size, load cost, agreement
    ├── steps[]      one entry per measured load step (version x target x repeat)
    └── slo[]        per version: the highest load that kept p99 under ``run.slo_p99_ms``

The HDR histograms (``Step.hdr``) are HdrHistogram's own compressed base64 encoding of the
latency in microseconds (1 us .. 60 s, 3 significant digits), so histograms from several
processes or repeats merge losslessly (``hdrhistogram.HdrHistogram.decode_and_add``).

This module must not import TensorFlow: a load-generator process writes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from tfsuite.atomic import atomic_write_text
from tfsuite.errors import UsageError

__all__ = [
    "SCHEMA",
    "Agreement",
    "ClientBound",
    "ConfidenceInterval",
    "EarlyStopping",
    "HistogramDelta",
    "LatencySummary",
    "Machine",
    "Results",
    "ResultsError",
    "RunInfo",
    "ServerDeltas",
    "ServerInfo",
    "SloResult",
    "Step",
    "StepLatency",
    "VersionInfo",
    "Window",
    "load_results",
]

#: Written into every file; a reader refuses files whose schema it does not know.
SCHEMA = "tfsuite.results/1"

Mode = Literal["closed", "open"]


class ResultsError(UsageError):
    """A results file that cannot be read as ``results.json`` (one line: which key, which file)."""


class _Model(BaseModel):
    model_config = {"extra": "allow"}  # newer writers may add keys; old readers keep working


class Machine(_Model):
    """The machine the load generator ran on."""

    hostname: str = ""
    platform: str = Field("", description="e.g. 'Linux-6.1-x86_64'")
    python: str = ""
    cores: int = Field(0, description="logical CPUs")
    memory_bytes: int = 0
    gpu: str | None = Field(None, description="GPU name(s) via NVML, None when there is none")


class ServerInfo(_Model):
    """The server that was measured."""

    address: str = Field(description="gRPC HOST:PORT the load was sent to")
    kind: Literal["embedded", "tfserving", "unknown"] = Field(
        "unknown", description="'embedded' when tfsuite started its own server for the run"
    )
    rest_address: str | None = Field(None, description="REST HOST:PORT, when known")
    metrics_url: str | None = Field(
        None, description="the Prometheus endpoint scraped, None when none was reachable"
    )
    batching: bool | None = Field(None, description="server-side batching on, when known")


class RunInfo(_Model):
    """One run of a measuring tool."""

    tool: Literal["compare", "locust"] = Field(description="what wrote the file")
    command: str = Field(description="the command line, as typed")
    started: str = Field(description="ISO 8601, UTC")
    ended: str | None = Field(None, description="ISO 8601, UTC; None while running")
    git_sha: str | None = None
    tfsuite_version: str = ""
    machine: Machine = Field(default_factory=Machine)
    server: ServerInfo
    model: str = Field(description="model name on the server")
    complete: bool = Field(description="False when the run was interrupted or a step failed")
    incomplete_reason: str = Field("", description="why not complete, one line")
    slo_p99_ms: float | None = Field(None, description="the p99 latency SLO, when one was set")
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="duration_s, max_duration_s, stability, window_s, batch_size, repeats, "
        "interleave, inputs, ... as given",
    )


class Agreement(_Model):
    """One version's outputs against the reference version's, on the same fixed inputs."""

    reference_version: int
    inputs: int = Field(description="how many inputs were compared")
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    top1: float | None = Field(None, description="classifiers: share with the same argmax")
    detection_match: float | None = Field(
        None, description="detectors: share of reference detections matched (class, IoU>=0.5)"
    )
    score_drift: float | None = Field(None, description="detectors: max |score delta| of matches")
    detail: str = Field("", description="what differs structurally (missing output, shape)")


class VersionInfo(_Model):
    """One version of the model as the run found it."""

    model: str
    version: int
    label: str | None = None
    variant: str | None = Field(None, description="from variants.json, when known")
    size_bytes: int | None = None
    load_seconds: float | None = Field(None, description="from the server's load log or metric")
    first_request_ms: float | None = Field(None, description="latency of the first request")
    rss_delta_bytes: int | None = Field(None, description="server RSS growth on load (local)")
    agreement: Agreement | None = Field(None, description="None for the reference version")


class LatencySummary(_Model):
    """Percentiles of one latency distribution, in ms."""

    count: int
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    p999: float | None = None
    max: float | None = None
    mean: float | None = None


class StepLatency(LatencySummary):
    """A step's latency. In open loop it is measured from the *scheduled* send time
    (coordinated omission corrected, as wrk2 does); ``uncorrected`` is the same requests
    timed from the actual send. In closed loop both clocks agree and ``uncorrected`` is None.
    """

    uncorrected: LatencySummary | None = None


class Window(_Model):
    """One fixed measurement window of a step (perf_analyzer's stability unit)."""

    start_s: float = Field(description="seconds since the step's measurement began")
    duration_s: float
    requests: int
    rps: float
    p99_ms: float | None = None


class ClientBound(_Model):
    """Whether the load generator, not the server, limited the step."""

    flag: bool = False
    reasons: list[str] = Field(
        default_factory=list,
        description="e.g. 'generator CPU 93% of a core', 'achieved 71% of target rate'",
    )


class EarlyStopping(_Model):
    """MLPerf LoadGen's early-stopping bound for the claimed percentile."""

    percentile: float = 99.0
    min_queries: int = Field(description="queries needed to claim the percentile")
    reached: bool


class HistogramDelta(_Model):
    """The change of one Prometheus histogram over a step (all label sets of the entry)."""

    count: float
    sum: float
    buckets: dict[str, float] = Field(
        default_factory=dict, description="upper bound 'le' -> cumulative count delta"
    )


class ServerDeltas(_Model):
    """What the server's own metrics say happened during a step (the deltas of its counters).

    On this suite's server the series carry ``model_version``; on TF Serving they do not,
    which is why versions are measured one after another by default.
    """

    per_version: bool = Field(description="True when the deltas are filtered by model_version")
    request_count_by_status: dict[str, float] = Field(default_factory=dict)
    request_latency_us: HistogramDelta | None = None
    runtime_latency_us: HistogramDelta | None = None
    input_batch_size: HistogramDelta | None = None
    processed_batch_size: HistogramDelta | None = None
    padding_size: HistogramDelta | None = None
    queuing_latency_us: HistogramDelta | None = None


class Step(_Model):
    """One measured load step."""

    model: str
    version: int
    label: str | None = None
    mode: Mode
    target: float = Field(description="concurrency (closed) or requests/s (open)")
    arrival: Literal["constant", "poisson"] | None = Field(None, description="open loop only")
    repeat: int = Field(0, description="0-based repeat index (--repeats)")
    batch_size: int = Field(1, description="rows per request")
    duration_s: float = Field(description="measured time, warm-up excluded")
    requests: int = Field(description="completed requests in the measured time, errors included")
    achieved_rps: float
    latency_ms: StepLatency
    errors_by_code: dict[str, int] = Field(default_factory=dict, description="gRPC code -> count")
    version_mismatches: int = Field(0, description="replies whose model_spec.version differed")
    stable: bool
    windows: list[Window] = Field(default_factory=list)
    client_bound: ClientBound = Field(default_factory=ClientBound)
    late_share: float | None = Field(None, description="open loop: share sent > 1 ms late")
    dispatch_lag_ms: LatencySummary | None = Field(None, description="open loop: send - schedule")
    generator_cpu: float | None = Field(None, description="generator CPU, share of one core")
    early_stopping: EarlyStopping | None = None
    server: ServerDeltas | None = None
    hdr: str | None = Field(None, description="HdrHistogram (us) of latency_ms, base64")
    hdr_uncorrected: str | None = None
    skipped: str = Field("", description="non-empty: the step did not run, and why")


class SloResult(_Model):
    """The highest load one version sustained with p99 under the SLO."""

    model: str
    version: int
    mode: Mode
    max_target: float | None = Field(None, description="concurrency or rate; None: never met")
    max_rps_under_slo: float | None = Field(None, description="achieved rps at max_target")
    p99_ms_at_max: float | None = None
    probes: list[dict[str, float]] = Field(
        default_factory=list, description="every probe of the search: target, achieved_rps, p99_ms"
    )


class ConfidenceInterval(_Model):
    """A bootstrap confidence interval of one figure over ``--repeats`` (one version x target)."""

    model: str
    version: int
    mode: Mode
    target: float
    figure: str = Field(description="'achieved_rps', 'p50_ms' or 'p99_ms'")
    repeats: int
    mean: float
    low: float
    high: float
    confidence: float = 0.95


class Results(_Model):
    """The whole file."""

    schema_: str = Field(SCHEMA, alias="schema")
    run: RunInfo
    versions: list[VersionInfo] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    slo: list[SloResult] = Field(default_factory=list)
    intervals: list[ConfidenceInterval] = Field(
        default_factory=list, description="with --repeats N >= 2: bootstrap CIs per figure"
    )

    model_config = {"extra": "allow", "populate_by_name": True}

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)

    def write(self, path: Path) -> Path:
        """Write atomically (a reader never sees half a file)."""
        return atomic_write_text(Path(path), self.to_json() + "\n")


def load_results(path: Path | str) -> Results:
    """Read and check one ``results.json``; :class:`ResultsError` in one line otherwise."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path}: not a JSON results file ({exc})") from None
    if not isinstance(raw, dict):
        raise ResultsError(f"{path}: not a tfsuite results.json (top level is not an object)")
    schema = raw.get("schema")
    if schema is None:
        raise ResultsError(f"{path}: not a tfsuite results.json (missing key 'schema')")
    if schema != SCHEMA:
        raise ResultsError(f"{path}: results schema {schema!r} is not {SCHEMA!r}")
    try:
        return Results.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        what = "missing key" if err["type"] == "missing" else err["msg"]
        raise ResultsError(f"{path}: {what} '{where}'") from None
