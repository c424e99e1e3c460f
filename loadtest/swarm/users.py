"""The Locust users: :class:`TFServingGrpcUser` and :class:`TFServingRestUser`.

Both send the engine's pre-built requests (:class:`~tfsuite.loadtest.request_pool.RequestPool`,
encoded once at test start) and report every call through the clients' one call hook
(:class:`~tfsuite.clients.hooks.CallEvent`): :class:`LocustRequests` turns each event into
``events.request`` with the entry's name (``Predict <model> v<version> <variant>``), the
latency in ms as a float (the HDR listener keeps the microseconds) and, on failure, the
client error (its gRPC code and TF Serving's message).

* gRPC: the suite's sync :class:`~tfsuite.clients.grpc_client.TFServingClient` under gevent
  (``grpc.experimental.gevent.init_gevent()`` is called by the locustfile, before any
  channel exists), one channel per process shared by its users. Every call carries a
  deadline (``--tfs-deadline-ms``), so a user stopped mid-call is never stuck on it
  (the GreenletExit hang of locust#1676).
* REST: Locust's ``FastHttpUser`` posting TF Serving JSON; its session's request reports are
  routed into the same call hook, and an error answer becomes a client error with TF
  Serving's ``{"error": ...}`` message and the HTTP status.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
from locust import FastHttpUser, User, task
from locust.exception import StopUser
from locust.user.wait_time import constant_throughput

from tfsuite.clients.errors import ServingClientError, from_http_error
from tfsuite.clients.hooks import CallEvent, CallHook, fire
from tfsuite.loadtest.swarm.plan import Entry, Plan
from tfsuite.loadtest.swarm.session import SESSION

__all__ = ["LocustRequests", "TFServingGrpcUser", "TFServingRestUser"]


class LocustRequests:
    """Call hook -> ``events.request`` (Predict calls only; set-up calls are not load)."""

    def __init__(self, environment: Any, plan: Plan) -> None:
        self._fire = environment.events.request.fire
        self._names = {ref: entry.name for ref, entry in plan.by_ref().items()}

    def __call__(self, event: CallEvent) -> None:
        if event.method != "Predict":
            return
        name = self._names.get((event.version, event.label))
        if name is None:
            name = f"Predict {event.model} " + (event.label or f"v{event.version}")
        self._fire(
            request_type=event.api,
            name=name,
            response_time=event.seconds * 1e3,
            response_length=event.response_bytes,
            exception=event.exception,
            context={"reply_version": event.reply_version},
        )


def _pace(user: User) -> float:
    """Closed loop: no think time. Open loop: ``constant_throughput`` at the stage's rate."""
    rate = SESSION.stage.rate_per_user
    return constant_throughput(rate)(user) if rate else 0.0


def _plan() -> Plan | None:
    """The process's plan; None when the start failed (the session has said why, and stops
    the run: the user's first task then stops it quietly)."""
    return SESSION.plan


class TFServingGrpcUser(User):
    """Predict over gRPC with the suite's client (``--host HOST:8500``)."""

    wait_time = _pace

    def on_start(self) -> None:
        self._plan = _plan()
        if self._plan is None:
            return
        self._client = SESSION.grpc_client(self.host or self.environment.host)
        self._requests: dict[str, Iterator[Any]] = {
            e.name: self._plan.grpc_requests(e) for e in self._plan.entries
        }

    @task
    def predict(self) -> None:
        if self._plan is None:
            raise StopUser()
        entry = self._plan.picker(SESSION.active)
        try:
            self._client.send(next(self._requests[entry.name]))
        except ServingClientError:
            pass  # reported to Locust through the call hook


class _RestCalls:
    """Stands in for FastHttpSession's ``request_event``: each report becomes a
    :class:`CallEvent` handed to the call hooks."""

    def __init__(self, model: str, hooks: list[CallHook]) -> None:
        self.model = model
        self.hooks = hooks
        self.current: Entry | None = None
        self.request_bytes = 0

    def fire(self, **meta: Any) -> None:
        entry = self.current
        seconds = float(meta.get("response_time") or 0.0) / 1e3
        event = CallEvent(
            "rest",
            "Predict",
            self.model,
            None if entry is None or entry.label else entry.version,
            entry.label if entry is not None else None,
            time.perf_counter() - seconds,
            seconds,
            self.request_bytes,
            int(meta.get("response_length") or 0),
            meta.get("exception"),
        )
        fire(self.hooks, event)


class TFServingRestUser(FastHttpUser):
    """Predict over TF Serving's REST API (``--tfs-rest --host http://HOST:8501``)."""

    wait_time = _pace

    def on_start(self) -> None:
        self._plan = _plan()
        if self._plan is None:
            return
        self._bodies = self._plan.rest_bodies()
        self._calls = _RestCalls(self._plan.model, [LocustRequests(self.environment, self._plan)])
        self.client.request_event = self._calls
        self._paths = {e.name: Plan.rest_path(self._plan.model, e) for e in self._plan.entries}

    @task
    def predict(self) -> None:
        if self._plan is None:
            raise StopUser()
        entry = self._plan.picker(SESSION.active)
        body = next(self._bodies)
        self._calls.current, self._calls.request_bytes = entry, len(body)
        with self.client.post(
            self._paths[entry.name],
            data=body,
            headers={"content-type": "application/json"},
            name=entry.name,
            catch_response=True,
        ) as response:
            if response.status_code and response.status_code >= 400:
                response.failure(_http_error(response, self.host or ""))


def _http_error(response: Any, address: str) -> ServingClientError:
    status = int(response.status_code)
    try:
        message = str(orjson.loads(response.content).get("error", response.text))
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        message = response.text or f"HTTP {status}"
    error = from_http_error(status, message, address)
    return ServingClientError(
        error.message,
        code=error.code,
        address=address,
        summary=f"HTTP {status} {error.code.name}: {message}",
    )
