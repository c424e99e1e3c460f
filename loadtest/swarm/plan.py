"""What a Locust run sends where: the versions checked against the server, and the request pool.

:func:`resolve_plan` runs once per process at test start (master, local runner and every
worker). It asks the server for the model's versions (``GetModelStatus``), checks the
``--tfs-versions`` / ``--tfs-labels`` against them (an unknown one fails the start and lists
what is available), names each version's variant (its label: given, or found among the
suite's default variant labels), and builds the engine's pre-encoded request pool from
``GetModelMetadata`` (or ``--tfs-inputs``). No TensorFlow here.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from tfsuite.clients.errors import ServerUnreachableError, ServingClientError
from tfsuite.clients.grpc_client import TFServingClient
from tfsuite.clients.rest_client import RestClient
from tfsuite.clients.rest_json import encode_predict_body
from tfsuite.errors import UsageError
from tfsuite.export.manifest import DEFAULT_VERSIONS
from tfsuite.loadtest.request_pool import RequestPool
from tfsuite.loadtest.swarm.options import SwarmSettings

__all__ = ["CONNECT_TIMEOUT_S", "Entry", "Plan", "entry_name", "resolve_plan"]

log = logging.getLogger(__name__)

#: How long test start waits for the server before it gives up with a clear message.
CONNECT_TIMEOUT_S = 10.0


def entry_name(model: str, version: int, variant: str | None) -> str:
    """Locust's row name for one version: ``Predict <model> v<version> <variant>``."""
    return f"Predict {model} v{version}" + (f" {variant}" if variant else "")


@dataclass(frozen=True)
class Entry:
    """One version under load: one Locust row and one histogram."""

    version: int
    label: str | None
    """The label requests are sent with (None: sent by version number)."""
    variant: str | None
    weight: float
    name: str


@dataclass
class Plan:
    """The checked target of a run."""

    model: str
    entries: list[Entry]
    pool: RequestPool
    rest: bool
    _bodies: dict[str, list[bytes]] = field(default_factory=dict, repr=False)
    #: active entry names -> (entries, cumulative weights): built once per stage, not per request
    _choices: dict[tuple[str, ...] | None, tuple[list[Entry], list[float]]] = field(
        default_factory=dict, repr=False
    )

    def by_ref(self) -> dict[tuple[int | None, str | None], Entry]:
        """(version, label) as a call hook reports it -> entry."""
        return {(None if e.label else e.version, e.label): e for e in self.entries}

    def picker(self, active: tuple[str, ...] | None = None) -> Entry:
        """A weighted random choice among the entries (only ``active`` ones, when given)."""
        choice = self._choices.get(active)
        if choice is None:
            entries = [e for e in self.entries if active is None or e.name in active]
            entries = entries or self.entries
            choice = self._choices[active] = (
                entries,
                list(itertools.accumulate(e.weight for e in entries)),
            )
        entries, cumulative = choice
        return random.choices(entries, cum_weights=cumulative)[0]

    def grpc_requests(self, entry: Entry) -> Iterator[Any]:
        """Endless pre-encoded Predict RPCs for ``entry``."""
        if entry.label:
            return self.pool.cycle(label=entry.label)
        return self.pool.cycle(version=entry.version)

    def rest_bodies(self) -> Iterator[bytes]:
        """Endless pre-encoded TF Serving JSON bodies (the same for every version)."""
        bodies = self._bodies.get("columnar")
        if bodies is None:
            bodies = [encode_predict_body(x, self.pool.signature) for x in self.pool.inputs]
            self._bodies["columnar"] = bodies
        return itertools.cycle(bodies)

    @staticmethod
    def rest_path(model: str, entry: Entry) -> str:
        tail = (
            f"labels/{quote(entry.label, safe='')}" if entry.label else f"versions/{entry.version}"
        )
        return f"/v1/models/{quote(model, safe='')}/{tail}:predict"


def _client(settings: SwarmSettings, host: str) -> TFServingClient | RestClient:
    if settings.rest:
        return RestClient(host, model=settings.model, timeout=CONNECT_TIMEOUT_S)
    address = host.split("://", 1)[-1].rstrip("/")
    client = TFServingClient(address, model=settings.model, timeout=CONNECT_TIMEOUT_S)
    client.wait_ready(CONNECT_TIMEOUT_S)
    return client


def resolve_plan(settings: SwarmSettings, host: str | None) -> Plan:
    """Check the settings against the server at ``host``; :class:`UsageError` (one line) or
    :class:`~tfsuite.clients.errors.ServingClientError` (unreachable, ...) otherwise."""
    if not host:
        api = "http://HOST:8501 (REST)" if settings.rest else "HOST:8500 (gRPC)"
        raise UsageError(f"no server given: pass --host {api}")
    try:
        with _client(settings, host) as client:
            return _resolve(client, settings, host)
    except ServerUnreachableError as exc:
        api = "REST" if settings.rest else "gRPC"
        raise ServerUnreachableError(
            exc.message,
            code=exc.code,
            address=host,
            summary=f"cannot reach TF Serving at {host} ({api}): {exc.message.strip()}; "
            "check that the server is running there and that --host points at it",
        ) from None


def _resolve(client: TFServingClient | RestClient, settings: SwarmSettings, host: str) -> Plan:
    try:
        statuses = client.status(settings.model)
    except ServingClientError as exc:
        if exc.code.name == "NOT_FOUND":
            raise UsageError(f"--tfs-model {settings.model}: not served at {host} ({exc.message})")
        raise
    available = sorted(s.version for s in statuses if s.state == "AVAILABLE")
    listed = ", ".join(map(str, available)) or "none"
    known = _known_labels(client, settings.model, settings.labels)
    if settings.labels:
        targets: list[tuple[int, str | None, str | None]] = []
        for label in settings.labels:
            if label not in known:
                names = ", ".join(f"{k} (v{v})" for k, v in sorted(known.items())) or "none found"
                raise UsageError(
                    f"--tfs-labels: model {settings.model} has no label {label!r}; "
                    f"labels: {names}; available versions: {listed}"
                )
            targets.append((known[label], label, label))
    else:
        versions = settings.versions or tuple(available)
        missing = [v for v in versions if v not in available]
        if missing:
            raise UsageError(
                f"--tfs-versions: model {settings.model} has no available version "
                f"{', '.join(map(str, missing))}; available versions: {listed}"
            )
        variant_of = {v: k for k, v in known.items()}
        targets = [(v, None, variant_of.get(v)) for v in versions]
    if not targets:
        raise UsageError(f"model {settings.model} at {host} has no available version")
    weights = settings.weights or (1.0,) * len(targets)
    entries = [
        Entry(v, label, variant, w, entry_name(settings.model, v, variant))
        for (v, label, variant), w in zip(targets, weights)
    ]
    first = entries[0]
    try:
        metadata = client.metadata(
            settings.model, None if first.label else first.version, first.label
        )
        pool = RequestPool.from_metadata(
            metadata, settings.batch_size, settings.inputs, settings.signature
        )
    except ServingClientError as exc:
        raise UsageError(f"GetModelMetadata for {first.name} failed: {exc}") from None
    return Plan(settings.model, entries, pool, settings.rest)


def _known_labels(
    client: TFServingClient | RestClient, model: str, asked: tuple[str, ...]
) -> dict[str, int]:
    """The labels (asked for, and the suite's default variant names) the server knows for
    ``model`` -> version. TF Serving has no call that lists labels, so each one is tried."""
    found: dict[str, int] = {}
    for label in dict.fromkeys((*asked, *DEFAULT_VERSIONS)):
        try:
            meta = client.metadata(model, label=label)
        except ServingClientError:
            continue
        if meta.version is not None:
            found[label] = int(meta.version)
    return found
