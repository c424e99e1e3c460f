"""gRPC adapter: TF Serving's PredictionService and ModelService over the protocol-free core.

The servicers only translate: every RPC is ``core.<method>(request)`` (``_delegate``), and
a ``ServingError`` (or any failure) becomes ``context.abort(code, message)`` in one place
(``_translate``). The server is built like TF Serving's: a thread pool of
``--grpc_max_threads`` (batching-aware default, see ``options.handler_thread_count``),
INT32_MAX message sizes (unless ``max_request_bytes`` is lower), ``--grpc_channel_arguments``,
an optional unix socket and optional TLS from ``--ssl_config_file`` (an ``SSLConfig`` read
by ``tfsuite.serving_configs.ssl``).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

import tfsuite.protos  # noqa: F401  (light TF proto import; must precede the pb2 imports)

# isort: split
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from tfsuite.clients.codec import CodecError
from tfsuite.errors import UsageError
from tfsuite.server.errors import ServingError
from tfsuite.server.observers import RequestObserver
from tfsuite.server.options import ServerOptions, handler_thread_count
from tfsuite.serving_configs.ssl import read_ssl_config

__all__ = [
    "HEALTH_SERVICES",
    "INT32_MAX",
    "GrpcEndpoint",
    "ModelServicer",
    "PredictionServicer",
    "build_grpc_server",
    "parse_channel_arguments",
    "ssl_credentials",
]

logger = logging.getLogger(__name__)

INT32_MAX = 2**31 - 1

#: Service names reported SERVING by the health service (plus "" for the whole server).
HEALTH_SERVICES = ("tensorflow.serving.PredictionService", "tensorflow.serving.ModelService")

_Req = TypeVar("_Req", bound=Message)
_Resp = TypeVar("_Resp", bound=Message)


def _model_name(request: Message) -> str:
    spec = getattr(request, "model_spec", None)
    return spec.name if spec is not None else ""


def _translate(api: str) -> Callable[[Callable[..., _Resp]], Callable[..., _Resp]]:
    """Run one RPC; turn every failure into a gRPC status, record the request."""

    def wrap(method: Callable[..., _Resp]) -> Callable[..., _Resp]:
        @functools.wraps(method)
        def rpc(self: _Servicer, request: _Req, context: grpc.ServicerContext) -> _Resp:
            start = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                return method(self, request, context)
            except ServingError as exc:
                code, message = exc.code, exc.message
            except CodecError as exc:
                code, message = grpc.StatusCode.INVALID_ARGUMENT, str(exc)
            except Exception as exc:  # a bug or a runtime failure: the client still gets a status
                logger.exception("%s failed", api)
                code, message = grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}"
            finally:
                if self._observer is not None:
                    self._observer(
                        "GRPC", api, _model_name(request), code, time.perf_counter() - start
                    )
            context.abort(code, message)
            raise AssertionError("unreachable")  # context.abort raises

        return rpc

    return wrap


class _Servicer:
    def __init__(self, core: Any, observer: RequestObserver | None = None) -> None:
        self._core = core
        self._observer = observer


def _delegate(api: str, core_method: str | None = None) -> Callable[..., Any]:
    """The servicer method for one RPC: ``core.<core_method or api>(request)`` in ``_translate``."""
    name = core_method or api

    @_translate(api)
    def rpc(self: _Servicer, request: Any, context: grpc.ServicerContext) -> Any:
        return getattr(self._core, name)(request)

    return rpc


class PredictionServicer(_Servicer, prediction_service_pb2_grpc.PredictionServiceServicer):
    """``tensorflow.serving.PredictionService`` delegating to the core."""

    Predict = _delegate("predict")
    Classify = _delegate("classify")
    Regress = _delegate("regress")
    MultiInference = _delegate("multi_inference")
    GetModelMetadata = _delegate("get_model_metadata")


class ModelServicer(_Servicer, model_service_pb2_grpc.ModelServiceServicer):
    """``tensorflow.serving.ModelService`` delegating to the core."""

    GetModelStatus = _delegate("get_model_status")
    HandleReloadConfigRequest = _delegate("handle_reload_config_request", "reload_config")


def parse_channel_arguments(text: str) -> list[tuple[str, int | str]]:
    """``--grpc_channel_arguments``: ``a=1,b=x`` -> ``[("a", 1), ("b", "x")]`` (ints where they parse)."""
    out: list[tuple[str, int | str]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(
                f"--grpc_channel_arguments: {item!r} is not key=value "
                "(e.g. grpc.max_concurrent_streams=1000)"
            )
        value = value.strip()
        try:
            out.append((key.strip(), int(value)))
        except ValueError:
            out.append((key.strip(), value))
    return out


def ssl_credentials(config: Message) -> grpc.ServerCredentials:
    """A validated ``SSLConfig`` (``tfsuite.serving_configs.ssl``) -> gRPC server credentials."""
    return grpc.ssl_server_credentials(
        [(config.server_key.encode(), config.server_cert.encode())],  # type: ignore[attr-defined]
        root_certificates=config.custom_ca.encode() or None,  # type: ignore[attr-defined]
        require_client_auth=bool(config.client_verify),  # type: ignore[attr-defined]
    )


@dataclass
class GrpcEndpoint:
    """A built (not yet started) gRPC server and what it listens on."""

    server: grpc.Server
    #: Bound TCP port (0 when TCP is off).
    port: int
    #: The health servicer when ``--enable_grpc_healthcheck_service`` is set.
    health: Any | None = None

    def set_serving(self, serving: bool) -> None:
        if self.health is None:
            return
        from grpc_health.v1 import health_pb2

        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *HEALTH_SERVICES):
            self.health.set(name, status)


def build_grpc_server(
    core: Any,
    options: ServerOptions,
    observer: RequestObserver | None = None,
    ssl_config: Message | None = None,
) -> GrpcEndpoint:
    """Create the gRPC server with both services, bind its ports; ``start()`` is the caller's.

    ``ssl_config``: the ``SSLConfig`` read from ``--ssl_config_file`` (read by the caller
    before the models load, so a bad file fails fast); read here when not given.
    """
    max_bytes = min(INT32_MAX, options.max_request_bytes)
    channel_args: list[tuple[str, int | str]] = [
        ("grpc.max_receive_message_length", max_bytes),
        ("grpc.max_send_message_length", INT32_MAX),
        # A restarted server must not share its port with a stale one (tests restart often).
        ("grpc.so_reuseport", 0),
    ]
    channel_args += parse_channel_arguments(options.grpc_channel_arguments)
    server = grpc.server(
        ThreadPoolExecutor(
            max_workers=handler_thread_count(options, "grpc_max_threads", core.batching_options),
            thread_name_prefix="grpc",
        ),
        options=channel_args,
        maximum_concurrent_rpcs=None,
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(core, observer), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(core, observer), server)
    health = None
    if options.enable_grpc_healthcheck_service:
        from grpc_health.v1 import health as health_module
        from grpc_health.v1 import health_pb2_grpc

        health = health_module.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
    if ssl_config is None and options.ssl_config_file:
        ssl_config = read_ssl_config(options.ssl_config_file)
    credentials = ssl_credentials(ssl_config) if ssl_config is not None else None
    port = 0
    if options.port != 0:
        address = f"{_host_for_grpc(options.host)}:{max(options.port, 0)}"
        try:
            port = (
                server.add_secure_port(address, credentials)
                if credentials is not None
                else server.add_insecure_port(address)
            )
        except RuntimeError as exc:
            raise UsageError(f"cannot bind gRPC to {address}: {exc}") from None
        if port == 0:
            raise UsageError(f"cannot bind gRPC to {address} (port in use?)")
    if options.grpc_socket_path:
        address = f"unix:{options.grpc_socket_path}"
        try:
            if credentials is not None:
                server.add_secure_port(address, credentials)
            else:
                server.add_insecure_port(address)
        except RuntimeError as exc:
            raise UsageError(f"cannot bind gRPC to {address}: {exc}") from None
    return GrpcEndpoint(server=server, port=port, health=health)


def _host_for_grpc(host: str) -> str:
    # IPv6 literals need brackets in a gRPC target.
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
