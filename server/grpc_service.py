"""gRPC adapter: TF Serving's PredictionService and ModelService over the protocol-free core.

The servicers only translate: requests go to the core as the TF Serving protos they are,
and a ``ServingError`` (or any failure) becomes ``context.abort(code, message)`` in one
place (``_translate``). The server is built like TF Serving's: a thread pool of
``--grpc_max_threads``, INT32_MAX message sizes (unless ``max_request_bytes`` is lower),
``--grpc_channel_arguments``, an optional unix socket and optional TLS from
``--ssl_config_file``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf import descriptor_pb2, message_factory, text_format
from google.protobuf.message import Message

import tfsuite.protos
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from tfsuite.clients.codec import CodecError
from tfsuite.errors import UsageError
from tfsuite.server.errors import ServingError
from tfsuite.server.observers import RequestObserver
from tfsuite.server.options import ServerOptions

__all__ = [
    "HEALTH_SERVICES",
    "INT32_MAX",
    "GrpcEndpoint",
    "ModelServicer",
    "PredictionServicer",
    "build_grpc_server",
    "parse_channel_arguments",
    "read_ssl_config",
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


class PredictionServicer(_Servicer, prediction_service_pb2_grpc.PredictionServiceServicer):
    """``tensorflow.serving.PredictionService`` delegating to the core."""

    @_translate("predict")
    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._core.predict(request)

    @_translate("classify")
    def Classify(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._core.classify(request)

    @_translate("regress")
    def Regress(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._core.regress(request)

    @_translate("multi_inference")
    def MultiInference(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._core.multi_inference(request)

    @_translate("get_model_metadata")
    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._core.get_model_metadata(request)


class ModelServicer(_Servicer, model_service_pb2_grpc.ModelServiceServicer):
    """``tensorflow.serving.ModelService`` delegating to the core."""

    @_translate("get_model_status")
    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._core.get_model_status(request)

    @_translate("handle_reload_config_request")
    def HandleReloadConfigRequest(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._core.reload_config(request)


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


def _ssl_config_class() -> type[Message]:
    """TF Serving's ``SSLConfig`` (config/ssl_config.proto); tensorflow-serving-api does not ship it.

    Declared from its published field names and numbers, not generated code.
    """
    fdp = descriptor_pb2.FileDescriptorProto(
        name="tfsuite/server/ssl_config.proto", package="tensorflow.serving", syntax="proto3"
    )
    msg = fdp.message_type.add(name="SSLConfig")
    for number, (name, ftype) in enumerate(
        [
            ("server_key", descriptor_pb2.FieldDescriptorProto.TYPE_STRING),
            ("server_cert", descriptor_pb2.FieldDescriptorProto.TYPE_STRING),
            ("custom_ca", descriptor_pb2.FieldDescriptorProto.TYPE_STRING),
            ("client_verify", descriptor_pb2.FieldDescriptorProto.TYPE_BOOL),
        ],
        start=1,
    ):
        msg.field.add(
            name=name,
            number=number,
            type=ftype,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
    from google.protobuf import descriptor_pool

    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.SSLConfig")
    )


def read_ssl_config(path: str) -> grpc.ServerCredentials:
    """``--ssl_config_file`` (SSLConfig text proto) -> gRPC server credentials."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"--ssl_config_file={path}: cannot read it ({exc.strerror})") from None
    config = _ssl_config_class()()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise UsageError(f"--ssl_config_file={path}: not an SSLConfig text proto ({exc})") from None
    if not config.server_key or not config.server_cert:  # type: ignore[attr-defined]
        raise UsageError(f"--ssl_config_file={path}: server_key and server_cert are required")
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
    core: Any, options: ServerOptions, observer: RequestObserver | None = None
) -> GrpcEndpoint:
    """Create the gRPC server with both services, bind its ports; ``start()`` is the caller's."""
    max_bytes = min(INT32_MAX, options.max_request_bytes)
    channel_args: list[tuple[str, int | str]] = [
        ("grpc.max_receive_message_length", max_bytes),
        ("grpc.max_send_message_length", INT32_MAX),
        # A restarted server must not share its port with a stale one (tests restart often).
        ("grpc.so_reuseport", 0),
    ]
    channel_args += parse_channel_arguments(options.grpc_channel_arguments)
    server = grpc.server(
        ThreadPoolExecutor(max_workers=options.grpc_max_threads, thread_name_prefix="grpc"),
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
    credentials = read_ssl_config(options.ssl_config_file) if options.ssl_config_file else None
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
