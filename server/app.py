"""``ModelServer``: the core plus its gRPC and REST front ends, started and stopped as one.

In-process use (tests, benchmarks)::

    with ModelServer(ServerOptions(port=-1, rest_api_port=-1, model_base_path=...)) as server:
        grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") ...

``start()`` returns once the models are loaded and both ports are bound; uvicorn runs in a
background thread with its own event loop, gRPC on its own thread pool. ``tfsuite serve``
calls ``run_forever()``: start, then wait for SIGTERM/SIGINT, stop accepting, let in-flight
requests finish, return (exit code 0).

Start-up lines are TF Serving's, so scripts that read them keep working::

    Running gRPC ModelServer at 127.0.0.1:8500 ...
    Exporting HTTP/REST API at:127.0.0.1:8501 ...
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

import grpc
import uvicorn

from tfsuite.errors import UsageError
from tfsuite.server.flags import EPHEMERAL_PORT, validate_options
from tfsuite.server.grpc_service import GrpcEndpoint, build_grpc_server
from tfsuite.server.http_timeouts import header_timeout_protocol
from tfsuite.server.observers import RequestObserver
from tfsuite.server.options import ServerOptions
from tfsuite.server.rest import RestApi
from tfsuite.serving_configs.ssl import read_ssl_config

if TYPE_CHECKING:
    from tfsuite.server.core import ServerCore

__all__ = ["DEFAULT_GRACE_SECONDS", "ModelServer", "print_announce"]

logger = logging.getLogger("tfsuite.server")

#: How long ``stop()`` lets in-flight requests finish by default.
DEFAULT_GRACE_SECONDS = 10.0


class _Uvicorn(uvicorn.Server):
    """uvicorn that tells another thread when it is listening (no polling)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


def _make_core(options: ServerOptions) -> ServerCore:
    # Imported here: the core pulls in TensorFlow; flag/config errors should not wait for it.
    from tfsuite.server.core import ServerCore

    return ServerCore(options)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose
    # proto says TCP, and without it every response pays Nagle + delayed ACK (~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, max(port, 0)))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot bind REST to {host}:{port}: {exc.strerror}") from None
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


class ModelServer:
    """The embedded TF-Serving-compatible server."""

    def __init__(
        self,
        options: ServerOptions,
        *,
        core: ServerCore | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> None:
        validate_options(options)
        self.options = options
        self._core = core
        self._announce = announce or logger.info
        self._grpc: GrpcEndpoint | None = None
        self._rest: RestApi | None = None
        self._uvicorn: _Uvicorn | None = None
        self._uvicorn_thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._started = False
        #: Called after every request with (entrypoint, api, model_name, status code,
        #: seconds): the extension point for benchmarks and request logging.
        self.request_observers: list[RequestObserver] = []
        #: Actual bound ports (0 when that front end is off).
        self.grpc_port = 0
        self.rest_port = 0

    @property
    def core(self) -> ServerCore:
        """The core, for tests and benchmarks that look below the protocols."""
        if self._core is None:
            raise RuntimeError("ModelServer.start() has not run yet")
        return self._core

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ModelServer:
        """Load the models, bind and start gRPC (and REST); return when requests can be served."""
        with self._lock:
            if self._started:
                return self
            self._started = True
        try:
            self._start()
        except BaseException:
            self.stop(0)
            raise
        return self

    def _start(self) -> None:
        options = self.options
        # Config errors before the (slow) model loads.
        metrics_path = self._metrics_path()
        ssl_config = read_ssl_config(options.ssl_config_file) if options.ssl_config_file else None
        observer = self._observe
        if self._core is None:
            self._core = _make_core(options)
        self._core.start()  # loads the models; returns once the initial versions are loaded
        render = self._core.metrics.render
        self._grpc = build_grpc_server(self._core, options, observer, ssl_config)
        self._grpc.server.start()
        self._grpc.set_serving(True)
        self.grpc_port = self._grpc.port
        host = options.host
        if self.grpc_port:
            self._announce(f"Running gRPC ModelServer at {host}:{self.grpc_port} ...")
        if options.grpc_socket_path:
            self._announce(
                f"Running gRPC ModelServer at UNIX socket {options.grpc_socket_path} ..."
            )
        if options.rest_api_port != 0:
            self._start_rest(metrics_path, render, observer)
            self._announce(f"Exporting HTTP/REST API at:{host}:{self.rest_port} ...")

    def _observe(
        self, entrypoint: str, api: str, model_name: str, code: grpc.StatusCode, seconds: float
    ) -> None:
        for observer in self.request_observers:
            observer(entrypoint, api, model_name, code, seconds)

    def _metrics_path(self) -> str | None:
        """The Prometheus path from --monitoring_config_file (None: not enabled)."""
        path = None
        if self.options.monitoring_config_file:
            from tfsuite.serving_configs.monitoring import metrics_path, read_monitoring_config

            path = metrics_path(read_monitoring_config(self.options.monitoring_config_file))
            if path and self.options.rest_api_port == 0:
                logger.warning("Prometheus metrics are enabled but REST is off (--rest_api_port=0)")
        return path

    def _start_rest(
        self, metrics_path: str | None, render: Callable[[], str | bytes] | None, observer: Any
    ) -> None:
        options = self.options
        self._rest = RestApi(
            self._core, options, metrics_path=metrics_path, render_metrics=render, observer=observer
        )
        sock = _bind(
            options.host, options.rest_api_port if options.rest_api_port != EPHEMERAL_PORT else 0
        )
        self.rest_port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._rest.app,
            log_level="warning",
            # uvicorn's own logging config runs logging.config.dictConfig, which closes every
            # handler in the process (absl's closes the stream it holds: stderr). The suite
            # configures logging once, in the CLI; uvicorn's loggers inherit it.
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=int(DEFAULT_GRACE_SECONDS),
            # Large request bodies are bounded by RestApi; keep-alive for benchmark clients.
            timeout_keep_alive=30,
            # Slow clients: headers within --rest_header_timeout_seconds (the body's
            # deadline is RestApi's).
            http=header_timeout_protocol(options.rest_header_timeout_seconds),
        )
        server = _Uvicorn(config)
        self._uvicorn = server
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(server.serve(sockets=[sock]))
            except BaseException as exc:  # surfaced to start() below
                failure.append(exc)
                server.ready.set()
            finally:
                sock.close()

        self._uvicorn_thread = threading.Thread(target=run, name="rest-uvicorn", daemon=True)
        self._uvicorn_thread.start()
        server.ready.wait()
        if failure:
            raise RuntimeError(f"REST server failed to start: {failure[0]}") from failure[0]

    def stop(self, grace: float | None = DEFAULT_GRACE_SECONDS) -> None:
        """Stop accepting, let in-flight requests finish (up to ``grace`` s), release everything."""
        if self._stopped.is_set():
            return
        if self._grpc is not None:
            self._grpc.set_serving(False)
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        grpc_done = self._grpc.server.stop(grace) if self._grpc is not None else None
        if self._uvicorn_thread is not None:
            self._uvicorn_thread.join(timeout=(grace or 0) + 5)
        if self._rest is not None:
            self._rest.close()
        if grpc_done is not None:
            grpc_done.wait((grace or 0) + 5)
        if self._core is not None:
            self._core.stop(grace if grace is not None else DEFAULT_GRACE_SECONDS)
        self._stopped.set()
        logger.info("Server stopped")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until ``stop()`` has finished; True if it has."""
        return self._stopped.wait(timeout)

    def run_forever(self, grace: float = DEFAULT_GRACE_SECONDS) -> None:
        """Start, serve until SIGTERM/SIGINT, then shut down gracefully (the CLI's foreground mode)."""
        stop_requested = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            logger.info("Received %s, shutting down", signal.Signals(signum).name)
            stop_requested.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            # Waiting in slices keeps the main thread responsive to signals.
            while not stop_requested.wait(0.5):
                pass
            self.stop(grace)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(1.0)


def print_announce(line: str) -> None:
    """TF Serving writes its start-up lines to stderr; the foreground CLI does the same, unwrapped."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
