"""``ServerOptions``: one field per ``tensorflow_model_server`` flag, named exactly like the flag.

The CLI (``tfsuite serve``) turns ``--flag=value`` arguments into this model; the core and
the protocol adapters read it. Defaults are TF Serving's (``model_servers/main.cc``).
Flags that make no sense in this server (GPU memory, TPU, TFLite, profiler, ...) are
accepted with their TF Serving default and listed in ``IGNORED_FLAGS``: the CLI logs them
as ignored when they are set to anything but the default.

Deliberate extensions: ``host`` (TF Serving always binds all interfaces; this server
binds 127.0.0.1 unless told), ``max_request_bytes`` (a size limit on request bodies),
``max_decoded_tensor_bytes`` (a limit on what a request's tensors decode to),
``rest_header_timeout_seconds`` / ``rest_body_timeout_seconds`` (slow REST clients) and
``disable_model_service_reload``.
"""

from __future__ import annotations

import os
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "IGNORED_FLAGS",
    "MAX_BATCHING_THREADS",
    "ServerOptions",
    "default_thread_count",
    "handler_thread_count",
]


def default_thread_count() -> int:
    """TF Serving's default for ``grpc_max_threads`` / ``rest_api_num_threads``: 4 × cores."""
    return 4 * (os.cpu_count() or 1)


#: Upper bound of the batching-aware default below (each waiting request holds a thread).
MAX_BATCHING_THREADS = 1024


class _Batching(Protocol):
    max_batch_size: int
    num_batch_threads: int


def handler_thread_count(options: ServerOptions, flag: str, batching: _Batching | None) -> int:
    """Threads for the gRPC (``grpc_max_threads``) or REST (``rest_api_num_threads``) handlers.

    A flag the user set is used as it is. Otherwise TF Serving's 4 × cores, raised when
    batching is on: TF Serving's gRPC server is asynchronous, but here a request waiting in a
    batch queue holds a handler thread, so the pool caps how many requests can be queued and
    therefore how full a batch can get. The default lets every batch thread run a full batch
    while one more fills: ``(num_batch_threads + 1) × max_batch_size`` (at most
    ``MAX_BATCHING_THREADS``). ``batching`` is the server-wide setting (the pool is built
    once; per-version ``batching_params.pbtxt`` files may come later): set the flag when
    those allow larger batches.
    """
    value = int(getattr(options, flag))
    if flag in options.model_fields_set or batching is None:
        return value
    fill = (batching.num_batch_threads + 1) * batching.max_batch_size
    return max(value, min(fill, MAX_BATCHING_THREADS))


#: Flags accepted for compatibility whose value this server does not use.
IGNORED_FLAGS: frozenset[str] = frozenset(
    {
        "per_process_gpu_memory_fraction",
        "xla_cpu_compilation_enabled",
        "prefer_tflite_model",
        "use_tflite_model",
        "num_tflite_pools",
        "num_tflite_interpreters_per_pool",
        "num_tflite_interpreters",
        "skip_initialize_tpu",
        "enable_profiler",
        "platform_config_file",
        "tensorflow_session_config_file",
        "thread_pool_factory_config_file",
        "mixed_precision",
        "use_alts_credentials",
        "flush_filesystem_caches",
        "remove_unused_fields_from_bundle_metagraph",
        "num_load_threads",
        "num_unload_threads",
        "rest_api_enable_cors_support",
    }
)


class ServerOptions(BaseModel):
    """Every ``tensorflow_model_server`` flag, by its exact name, with TF Serving's default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # -- network -----------------------------------------------------------------------------
    host: str = Field(
        "127.0.0.1",
        description="tfsuite extension: interface the gRPC and REST servers bind to "
        "(TF Serving binds 0.0.0.0; pass --host=0.0.0.0 for that).",
    )
    port: int = Field(
        8500,
        description="gRPC port; 0 turns the TCP listener off as in TF Serving (then "
        "--grpc_socket_path is needed); -1 binds a free ephemeral port (tfsuite extension).",
    )
    grpc_socket_path: str = Field(
        "", description="If set, also serve gRPC on this UNIX domain socket path."
    )
    grpc_channel_arguments: str = Field(
        "",
        description="Comma-separated gRPC server channel arguments, e.g. "
        "'grpc.max_concurrent_streams=1000,grpc.max_connection_age_ms=2000'.",
    )
    grpc_max_threads: int = Field(
        default_factory=default_thread_count,
        description="Max threads of the gRPC server's thread pool, i.e. concurrent requests "
        "in flight (default 4 × cores; with --enable_batching, unless set, raised to "
        "(num_batch_threads + 1) × max_batch_size, at most 1024, so batches can fill).",
    )
    enable_grpc_healthcheck_service: bool = Field(
        False, description="Register the standard grpc.health.v1.Health service."
    )
    ssl_config_file: str = Field(
        "", description="SSLConfig text proto (server_key, server_cert, custom_ca, client_verify)."
    )
    use_alts_credentials: bool = Field(False, description="Ignored: ALTS is Google-internal.")
    rest_api_port: int = Field(
        0,
        description="REST (HTTP/JSON) port; 0 turns REST off as in TF Serving; -1 binds a free "
        "ephemeral port (tfsuite extension). Must differ from --port.",
    )
    rest_api_num_threads: int = Field(
        default_factory=default_thread_count,
        description="Threads that run REST requests (default as --grpc_max_threads).",
    )
    rest_api_timeout_in_ms: int = Field(
        30000,
        description="REST request timeout, ms (0: none). On time out the client gets 504 "
        "'Deadline Exceeded' but the inference already running is not cancelled (a "
        "TensorFlow call cannot be interrupted): it finishes on its thread, result dropped.",
    )
    rest_header_timeout_seconds: float = Field(
        10.0,
        description="tfsuite extension: a REST client must send a request's line and headers "
        "within this many seconds of its first byte (or of connecting), else 408 and the "
        "connection is closed (0: no limit). Idle keep-alive connections close after 30 s.",
    )
    rest_body_timeout_seconds: float = Field(
        60.0,
        description="tfsuite extension: a REST request body (all of Content-Length) must "
        "arrive within this many seconds of its headers, else 408 and the connection is "
        "closed (0: no limit).",
    )
    rest_api_enable_cors_support: bool = Field(
        False, description="Accepted; CORS headers are not sent by this server."
    )
    max_request_bytes: int = Field(
        2**31 - 1,
        description="tfsuite extension: largest accepted request (gRPC message or REST body), "
        "bytes. TF Serving's gRPC limit is INT32_MAX.",
    )

    max_decoded_tensor_bytes: int = Field(
        2**30,
        description="tfsuite extension: most bytes the input tensors of one request may "
        "decode to beyond the request's own size (a TensorProto with dims and no values "
        "decodes to a full array). A request decodes to at most max(this, its serialized "
        "size); more is INVALID_ARGUMENT 'tensor parsing error' before anything is allocated.",
    )
    disable_model_service_reload: bool = Field(
        False,
        description="tfsuite extension: refuse ModelService.HandleReloadConfigRequest "
        "(PERMISSION_DENIED). TF Serving lets any gRPC client replace the model config and point "
        "a model at any path the server can read; set this where clients are not trusted.",
    )

    # -- models --------------------------------------------------------------------------------
    model_name: str = Field(
        "default", description="Name of the model in single-model mode (with model_base_path)."
    )
    model_base_path: str = Field(
        "",
        description="Base path of the model in single-model mode; version subdirectories are "
        "integers. Ignored when model_config_file is set.",
    )
    model_config_file: str = Field(
        "",
        description="ModelServerConfig text proto (model_config_list). When set, model_name "
        "and model_base_path are ignored.",
    )
    model_config_file_poll_wait_seconds: int = Field(
        0,
        description="Re-read model_config_file every N seconds (0: read once at start).",
    )
    file_system_poll_wait_seconds: int = Field(
        1,
        description="Poll each base path for new/removed versions every N seconds "
        "(0: poll once at start only; negative: no polling at all).",
    )
    allow_version_labels_for_unavailable_models: bool = Field(
        False,
        description="Allow assigning a version label to a version that is not loaded yet.",
    )
    max_num_load_retries: int = Field(
        5, description="Retries after a failed version load before giving up on it."
    )
    load_retry_interval_micros: int = Field(
        60_000_000, description="Wait between load retries, microseconds."
    )
    num_load_threads: int = Field(0, description="Accepted; loads run on one loader thread.")
    num_unload_threads: int = Field(0, description="Accepted; unloads run on the loader thread.")
    saved_model_tags: str = Field(
        "serve", description="Comma-separated MetaGraphDef tags to load from each SavedModel."
    )
    enable_model_warmup: bool = Field(
        True,
        description="Replay assets.extra/tf_serving_warmup_requests of each version before "
        "making it AVAILABLE; a failing warmup request fails the load.",
    )
    num_request_iterations_for_warmup: int = Field(
        1, description="How many times each warmup record is replayed."
    )
    flush_filesystem_caches: bool = Field(True, description="Accepted; no effect here.")
    remove_unused_fields_from_bundle_metagraph: bool = Field(
        True, description="Accepted; no effect here."
    )
    enable_signature_method_name_check: bool = Field(
        False,
        description="Classify/Regress only accept signatures whose method_name says so "
        "(off: any signature with the right inputs/outputs serves, as in TF Serving).",
    )

    # -- batching ------------------------------------------------------------------------------
    enable_batching: bool = Field(
        False, description="Batch requests per model version + signature."
    )
    batching_parameters_file: str = Field(
        "",
        description="BatchingParameters text proto; an error at start if set without "
        "enable_batching.",
    )
    enable_per_model_batching_parameters: bool = Field(
        False,
        description="Read batching_params.pbtxt from each version dir (falls back to "
        "batching_parameters_file / defaults when absent).",
    )

    # -- TensorFlow runtime ---------------------------------------------------------------------
    tensorflow_session_parallelism: int = Field(
        0,
        description="Threads for both intra- and inter-op pools when the two below are 0 "
        "(0: TensorFlow picks). Process-wide in TF2: applied once before the first load.",
    )
    tensorflow_intra_op_parallelism: int = Field(
        0, description="Intra-op thread pool size (0: auto). Process-wide, set before first load."
    )
    tensorflow_inter_op_parallelism: int = Field(
        0, description="Inter-op thread pool size (0: auto). Process-wide, set before first load."
    )
    per_process_gpu_memory_fraction: float = Field(
        0.0, description="Ignored: no GPU in this server."
    )
    xla_cpu_compilation_enabled: bool = Field(False, description="Ignored.")
    tensorflow_session_config_file: str = Field("", description="Ignored.")
    platform_config_file: str = Field("", description="Ignored: only 'tensorflow' is served.")
    mixed_precision: str = Field("", description="Ignored.")
    enable_profiler: bool = Field(True, description="Ignored.")
    skip_initialize_tpu: bool = Field(False, description="Ignored: no TPU.")
    prefer_tflite_model: bool = Field(False, description="Ignored: TFLite is not served.")
    use_tflite_model: bool = Field(False, description="Ignored (deprecated in TF Serving).")
    num_tflite_pools: int = Field(1, description="Ignored.")
    num_tflite_interpreters_per_pool: int = Field(1, description="Ignored.")
    num_tflite_interpreters: int = Field(1, description="Ignored.")
    thread_pool_factory_config_file: str = Field("", description="Ignored.")

    # -- monitoring ----------------------------------------------------------------------------
    monitoring_config_file: str = Field(
        "",
        description="MonitoringConfig text proto: prometheus_config { enable: true path: ... } "
        "served on the REST port.",
    )

    # -- derived helpers (not flags) -----------------------------------------------------------
    @property
    def tags(self) -> list[str]:
        """``saved_model_tags`` as a list (empty items dropped)."""
        return [t.strip() for t in self.saved_model_tags.split(",") if t.strip()]

    def intra_inter_threads(self) -> tuple[int, int]:
        """Effective (intra, inter) op parallelism; session_parallelism fills zeros."""
        intra = self.tensorflow_intra_op_parallelism or self.tensorflow_session_parallelism
        inter = self.tensorflow_inter_op_parallelism or self.tensorflow_session_parallelism
        return intra, inter
