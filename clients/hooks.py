"""The clients' one call hook (httpx's ``event_hooks`` idea): every call reports itself.

Each finished call of a gRPC client (sync or asyncio) or a REST client, failed or not,
hands one :class:`CallEvent` to every callable in the client's ``call_hooks`` list. The
online engine, the Locust users and the CLIs listen here instead of timing calls
themselves, so every tool measures the same span: from just before the request goes to
the channel to just after the answer is parsed (or the error is known).

    def on_call(event: CallEvent) -> None:
        print(event.method, event.version or event.label, f"{event.seconds * 1e3:.1f} ms")

    client = AsyncTFServingClient("127.0.0.1:8500", model="m", call_hooks=[on_call])
    client.call_hooks.append(recorder.on_call)      # or later

Hooks run synchronously on the calling thread / event loop right after the call, so they
must be quick (record into a histogram, count, fire a Locust event). An exception raised
by a hook propagates to the caller: a broken listener is a bug, not a lost measurement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["Api", "CallEvent", "CallHook", "fire"]

Api = Literal["grpc", "rest"]


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One finished client call."""

    api: Api
    """'grpc' or 'rest'."""
    method: str
    """'Predict', 'GetModelMetadata', ... (gRPC method names; REST calls use the same)."""
    model: str
    version: int | None
    """The version asked for (None when a label or the server's default was asked for)."""
    label: str | None
    """The version label asked for, if any."""
    started: float
    """``time.perf_counter()`` just before the request was handed to the channel."""
    seconds: float
    """Wall time of the call, from ``started`` to the parsed answer or the error."""
    request_bytes: int
    """Serialized request size (REST: the JSON bodies sent)."""
    response_bytes: int
    """Serialized answer size (0 on error; REST: the bodies received)."""
    exception: BaseException | None = None
    """The error the call raised (a ``ServingClientError``), None on success."""
    reply_version: int | None = None
    """``model_spec.version`` of the answer, where the answer carries one (gRPC Predict,
    Classify, Regress, GetModelMetadata): the version that actually served the call."""

    @property
    def code(self) -> str:
        """'OK', or the gRPC status name of the error (e.g. 'UNAVAILABLE')."""
        if self.exception is None:
            return "OK"
        code = getattr(self.exception, "code", None)
        return getattr(code, "name", None) or type(self.exception).__name__


CallHook = Callable[[CallEvent], None]
"""A listener: called with each finished call's :class:`CallEvent`."""


def fire(hooks: Sequence[CallHook], event: CallEvent) -> None:
    """Hand ``event`` to each hook, in order."""
    for hook in hooks:
        hook(event)
