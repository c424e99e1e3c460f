"""gRPC clients for TF Serving: :class:`TFServingClient` (sync) and :class:`AsyncTFServingClient`.

The public surface (``predict``, ``metadata``, ``status``, ``classify``, ``regress``,
``reload_config``) is written once in :class:`_ServingAPI`: each method builds an
:class:`~tfsuite.clients.rpcs.RPC` and hands it to ``_invoke``. The sync client's
``_invoke`` returns the parsed value; the asyncio client's returns a coroutine (so every
method of :class:`AsyncTFServingClient` is awaited). Nothing else differs.

Every finished call, failed or not, is reported to the client's ``call_hooks``
(:mod:`tfsuite.clients.hooks`): the one place calls are timed.

Channels are created with TF Serving-sized message limits (the gRPC default of 4 MB is
smaller than one 1080p frame batch) and keepalive, optionally with TLS.

    with TFServingClient("127.0.0.1:8500", model="ssd") as client:
        out = client.predict({"image_tensor": batch}, label="weight_quant")

    async with AsyncTFServingClient("127.0.0.1:8500", model="ssd") as client:
        out = await client.predict({"image_tensor": batch})
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from tfsuite.clients import rpcs
from tfsuite.clients.errors import ServingClientError, from_rpc_error, unreachable
from tfsuite.clients.hooks import CallEvent, CallHook, fire
from tfsuite.clients.lifecycle import AsyncClosing, Closing
from tfsuite.clients.rpcs import RPC

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "AsyncTFServingClient",
    "ChannelOptions",
    "TFServingClient",
    "TLSConfig",
]

#: Default send/receive limit: 512 MiB (TF Serving's own server limit is INT32_MAX).
DEFAULT_MAX_MESSAGE_BYTES = 512 * 1024 * 1024

Metadata = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class ChannelOptions:
    """gRPC channel arguments the clients set."""

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    """grpc.max_send_message_length and grpc.max_receive_message_length (-1 = unlimited)."""
    keepalive_time_ms: int = 300_000
    """Ping a connection with calls in flight after this long without data, so a dead server
    is noticed during a long request. Not lower by default: gRPC servers (TF Serving too)
    answer pings more often than every 5 minutes without data with GOAWAY (too_many_pings)."""
    keepalive_timeout_ms: int = 10_000
    """Close the connection if a ping is not answered within this time."""
    extra: tuple[tuple[str, Any], ...] = ()
    """Any other channel arguments, e.g. (("grpc.lb_policy_name", "round_robin"),)."""

    def as_list(self) -> list[tuple[str, Any]]:
        return [
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.keepalive_time_ms", self.keepalive_time_ms),
            ("grpc.keepalive_timeout_ms", self.keepalive_timeout_ms),
            *self.extra,
        ]


@dataclass(frozen=True)
class TLSConfig:
    """TLS for the channel: server CA, and a client key pair for mutual TLS."""

    root_certificates: Path | bytes | None = None
    """PEM of the CA that signed the server's certificate (None: the system roots)."""
    private_key: Path | bytes | None = None
    """Client key (PEM), for servers that require client certificates."""
    certificate_chain: Path | bytes | None = None
    """Client certificate chain (PEM)."""
    server_name_override: str | None = None
    """Expected name in the server certificate when it differs from the host dialed."""

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=_pem(self.root_certificates),
            private_key=_pem(self.private_key),
            certificate_chain=_pem(self.certificate_chain),
        )

    def channel_args(self) -> list[tuple[str, Any]]:
        if self.server_name_override:
            return [("grpc.ssl_target_name_override", self.server_name_override)]
        return []


def _pem(value: Path | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


def _open_channel(api: Any, address: str, options: ChannelOptions, tls: TLSConfig | None) -> Any:
    """A channel from ``api`` (``grpc`` or ``grpc.aio``: the same two factories on both)."""
    args = options.as_list() + (tls.channel_args() if tls else [])
    if tls is not None:
        return api.secure_channel(address, tls.credentials(), options=args)
    return api.insecure_channel(address, options=args)


@dataclass(eq=False)  # a client is a connection: identity, not field equality
class _ServingAPI:
    """The public methods, once. Subclasses provide ``_invoke`` (and the channel)."""

    address: str
    """HOST:PORT of TF Serving's gRPC port."""
    model: str | None = None
    """Default model name for calls that do not pass one."""
    timeout: float | None = 30.0
    """Default per-call deadline in seconds (None: no deadline)."""
    call_metadata: Metadata = ()
    """gRPC metadata sent with every call (e.g. auth headers); per-call metadata is appended."""
    options: ChannelOptions = field(default_factory=ChannelOptions)
    tls: TLSConfig | None = None
    call_hooks: list[CallHook] = field(default_factory=list)
    """Listeners told about every finished call (:class:`~tfsuite.clients.hooks.CallEvent`)."""

    def _model(self, model: str | None) -> str:
        return model or self.model or ""

    def _invoke(self, rpc: RPC[Any], timeout: float | None, metadata: Metadata | None) -> Any:
        raise NotImplementedError

    def send(
        self, rpc: RPC[Any], timeout: float | None = None, metadata: Metadata | None = None
    ) -> Any:
        """Send a prebuilt :class:`~tfsuite.clients.rpcs.RPC` (e.g. a request pool's
        pre-encoded Predict from :func:`~tfsuite.clients.rpcs.predict_rpc_encoded`)."""
        return self._invoke(rpc, timeout, metadata)

    def _report(
        self,
        rpc: RPC[Any],
        started: float,
        response_bytes: int,
        response: Any,
        error: BaseException | None,
    ) -> None:
        if not self.call_hooks:
            return
        seconds = time.perf_counter() - started
        event = CallEvent(
            "grpc",
            rpc.method,
            rpc.model,
            rpc.version,
            rpc.label,
            started,
            seconds,
            rpc.request_bytes,
            response_bytes,
            error,
            _reply_version(response),
        )
        fire(self.call_hooks, event)

    def _finish(self, rpc: RPC[Any], started: float, reply: tuple[int, Any]) -> Any:
        size, response = reply
        try:
            value = _parse(rpc, response, self.address)
        except ServingClientError as exc:
            self._report(rpc, started, size, response, exc)
            raise
        self._report(rpc, started, size, response, None)
        return value

    def _failed(self, rpc: RPC[Any], started: float, exc: grpc.RpcError) -> ServingClientError:
        error = from_rpc_error(exc, self.address)
        self._report(rpc, started, 0, None, error)
        return error

    def _call_args(self, timeout: float | None, metadata: Metadata | None) -> dict[str, Any]:
        md = tuple(self.call_metadata) + tuple(metadata or ())
        return {"timeout": self.timeout if timeout is None else timeout, "metadata": md or None}

    def predict(
        self,
        inputs: Mapping[str, Any],
        model: str | None = None,
        version: int | None = None,
        label: str | None = None,
        signature: str | None = None,
        output_filter: Iterable[str] | None = None,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> Any:
        """Predict: ``{alias: array}`` in, ``{alias: ndarray}`` out."""
        rpc = rpcs.predict_rpc(inputs, self._model(model), version, label, signature, output_filter)
        return self._invoke(rpc, timeout, metadata)

    def metadata(
        self,
        model: str | None = None,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> Any:
        """GetModelMetadata -> :class:`~tfsuite.clients.specs.ModelMetadata`."""
        rpc = rpcs.metadata_rpc(self._model(model), version, label)
        return self._invoke(rpc, timeout, metadata)

    def status(
        self,
        model: str | None = None,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> Any:
        """GetModelStatus -> list of :class:`~tfsuite.clients.specs.VersionStatus`."""
        return self._invoke(rpcs.status_rpc(self._model(model), version, label), timeout, metadata)

    def classify(
        self,
        examples: Sequence[Any],
        model: str | None = None,
        version: int | None = None,
        label: str | None = None,
        signature: str | None = None,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> Any:
        """Classify ``tf.train.Example``s (or ``{feature: value}`` dicts) -> [[(label, score)]]."""
        rpc = rpcs.examples_rpc("Classify", examples, self._model(model), version, label, signature)
        return self._invoke(rpc, timeout, metadata)

    def regress(
        self,
        examples: Sequence[Any],
        model: str | None = None,
        version: int | None = None,
        label: str | None = None,
        signature: str | None = None,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> Any:
        """Regress ``tf.train.Example``s (or dicts) -> float32 array, one value per example."""
        rpc = rpcs.examples_rpc("Regress", examples, self._model(model), version, label, signature)
        return self._invoke(rpc, timeout, metadata)

    def reload_config(
        self, config: Any, timeout: float | None = None, metadata: Metadata | None = None
    ) -> Any:
        """ModelService.HandleReloadConfigRequest with a ``ModelServerConfig`` (or its text)."""
        return self._invoke(rpcs.reload_config_rpc(config), timeout, metadata)


def _reply_version(response: Any) -> int | None:
    spec = getattr(response, "model_spec", None)
    if spec is None or not spec.HasField("version"):
        return None
    return int(spec.version.value)


def _sized(response_class: Any) -> Any:
    """A deserializer that also keeps the answer's wire size (for the call hook)."""
    parse = response_class.FromString

    def deserialize(data: bytes) -> tuple[int, Any]:
        return len(data), parse(data)

    return deserialize


def _multicallables(channel: Any) -> dict[str, Any]:
    # The same factory exists on grpc.Channel and grpc.aio.Channel. _registered_method keeps
    # grpc from looking the method up by name on every call.
    return {
        name: channel.unary_unary(
            path,
            request_serializer=rpcs.serialize,
            response_deserializer=_sized(response),
            _registered_method=True,
        )
        for name, (path, response) in rpcs.METHODS.items()
    }


@dataclass(eq=False)
class TFServingClient(_ServingAPI, Closing):
    """Blocking gRPC client. Thread-safe; reuse one per server (it holds the connection)."""

    def __post_init__(self) -> None:
        self._channel = _open_channel(grpc, self.address, self.options, self.tls)
        self._calls = _multicallables(self._channel)

    def _invoke(self, rpc: RPC[Any], timeout: float | None, metadata: Metadata | None) -> Any:
        call = self._calls[rpc.method]
        started = time.perf_counter()
        try:
            reply = call(rpc.request, **self._call_args(timeout, metadata))
        except grpc.RpcError as exc:
            raise self._failed(rpc, started, exc) from None
        return self._finish(rpc, started, reply)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the channel connects; :class:`ServerUnreachableError` otherwise."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise unreachable(self.address, "gRPC", f"not ready after {timeout:g}s") from None

    def close(self) -> None:
        self._channel.close()


@dataclass(eq=False)
class AsyncTFServingClient(_ServingAPI, AsyncClosing):
    """asyncio gRPC client on ``grpc.aio``; every method returns an awaitable.

    The channel is opened on first use, inside the running event loop.
    """

    def __post_init__(self) -> None:
        self._channel: grpc.aio.Channel | None = None
        self._calls: dict[str, Any] = {}

    def _open(self) -> dict[str, Any]:
        if self._channel is None:
            self._channel = _open_channel(grpc.aio, self.address, self.options, self.tls)
            self._calls = _multicallables(self._channel)
        return self._calls

    async def _invoke(self, rpc: RPC[Any], timeout: float | None, metadata: Metadata | None) -> Any:
        call = (self._calls or self._open())[rpc.method]
        started = time.perf_counter()
        try:
            reply = await call(rpc.request, **self._call_args(timeout, metadata))
        except grpc.RpcError as exc:  # grpc.aio.AioRpcError is one
            raise self._failed(rpc, started, exc) from None
        return self._finish(rpc, started, reply)

    async def wait_ready(self, timeout: float = 10.0) -> None:
        self._open()
        assert self._channel is not None
        try:
            await asyncio.wait_for(self._channel.channel_ready(), timeout)
        except asyncio.TimeoutError:
            raise unreachable(self.address, "gRPC", f"not ready after {timeout:g}s") from None

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._calls = {}


def _parse(rpc: RPC[Any], response: Any, address: str) -> Any:
    try:
        return rpc.parse(response)
    except ServingClientError as exc:
        exc.address = address
        raise
