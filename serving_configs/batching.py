"""``--batching_parameters_file`` and per-version ``batching_params.pbtxt``.

``BatchingParameters`` is TF Serving's message (see ``project_protos``); ``BatchingOptions`` is
the same thing resolved: every unset field replaced by the default TF Serving applies
(``SharedBatchScheduler`` / ``BatchingSession`` options), and validated the way
``tensorflow_model_server`` validates it when it wraps a session for batching.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import Message

from tfsuite.serving_configs.errors import ConfigError
from tfsuite.serving_configs.project_protos import BatchingParameters
from tfsuite.serving_configs.textproto import parse_text_proto, read_text_proto, write_text_proto

__all__ = [
    "PER_MODEL_BATCHING_FILE",
    "BatchingOptions",
    "BatchingParameters",
    "parse_batching_parameters",
    "parse_sizes",
    "read_batching_parameters",
    "read_per_model_batching",
    "write_batching_parameters",
]

#: The file ``--enable_per_model_batching_parameters`` reads from each SavedModel version dir.
PER_MODEL_BATCHING_FILE = "batching_params.pbtxt"


def _default_threads() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class BatchingOptions:
    """Batching parameters with TF Serving's defaults filled in and checked."""

    max_batch_size: int = 1000
    """Largest batch the scheduler forms (and largest single request: bigger ones are
    rejected with "Task size N is larger than maximum input batch size M" unless
    large-batch splitting is on). TF Serving default 1000."""

    batch_timeout_micros: int = 0
    """How long the oldest queued task waits for a fuller batch before a batch is formed
    anyway. 0 (the default) means: form a batch as soon as a batch thread is free."""

    max_enqueued_batches: int = 10
    """Queue capacity in batches; beyond it requests fail with UNAVAILABLE "The batch
    scheduling queue to which this task was submitted is full". Default 10."""

    num_batch_threads: int = field(default_factory=_default_threads)
    """Threads that run batches (shared by all models' queues). Default: number of CPUs."""

    thread_pool_name: str = "batch_threads"
    """Name of the batch thread pool (only cosmetic: thread names and traces)."""

    allowed_batch_sizes: tuple[int, ...] = ()
    """If set, batches are padded up to the next of these sizes; strictly increasing, and
    the last entry must equal max_batch_size. Empty (default): any size up to the max."""

    pad_variable_length_inputs: bool = False
    """Pad inputs whose non-batch dimensions differ to the largest in the batch (instead of
    failing with FAILED_PRECONDITION)."""

    enable_large_batch_splitting: bool = False
    """Split a request bigger than the open batch's free room across batches; then
    max_batch_size bounds a request and max_execution_batch_size bounds a batch."""

    max_execution_batch_size: int | None = None
    """Largest batch actually run when large-batch splitting is on; None means
    max_batch_size. Ignored when splitting is off."""

    def __post_init__(self) -> None:
        # Accept any sequence for convenience but store an immutable tuple.
        sizes = tuple(int(s) for s in self.allowed_batch_sizes)
        object.__setattr__(self, "allowed_batch_sizes", sizes)
        self.validate()

    # -- derived ---------------------------------------------------------------------------
    @property
    def execution_batch_size(self) -> int:
        """Largest batch run: max_execution_batch_size with splitting, else max_batch_size."""
        if self.enable_large_batch_splitting and self.max_execution_batch_size is not None:
            return self.max_execution_batch_size
        return self.max_batch_size

    # -- checks ----------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``ConfigError`` for values TF Serving rejects (or that cannot work)."""
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            value = getattr(self, name)
            if value <= 0:
                raise ConfigError(f"{name} must be positive; got {value}")
        if self.batch_timeout_micros < 0:
            raise ConfigError(f"batch_timeout_micros must be >= 0; got {self.batch_timeout_micros}")
        if self.max_execution_batch_size is not None and self.max_execution_batch_size <= 0:
            raise ConfigError(
                f"max_execution_batch_size must be positive; got {self.max_execution_batch_size}"
            )
        if (
            self.enable_large_batch_splitting
            and self.max_execution_batch_size is not None
            and self.max_execution_batch_size > self.max_batch_size
        ):
            raise ConfigError(
                "max_batch_size should be greater or equal than max_execution_batch_size; got "
                f"max_batch_size={self.max_batch_size}, "
                f"max_execution_batch_size={self.max_execution_batch_size}"
            )
        sizes = self.allowed_batch_sizes
        if not sizes:
            return
        if any(s <= 0 for s in sizes):
            raise ConfigError(f"allowed_batch_sizes entries must be positive; got {list(sizes)}")
        if any(b <= a for a, b in itertools.pairwise(sizes)):
            raise ConfigError(
                f"allowed_batch_sizes entries must be monotonically increasing; got {list(sizes)}"
            )
        # tensorflow_model_server checks this against max_batch_size even when large-batch
        # splitting is on (bundle_factory_util WrapSessionForBatching).
        if sizes[-1] != self.max_batch_size:
            raise ConfigError(
                "Last entry in allowed_batch_sizes must match max_batch_size; "
                f"last entry was {sizes[-1]}; expected {self.max_batch_size}"
            )

    # -- proto -----------------------------------------------------------------------------
    @classmethod
    def from_proto(cls, msg: Message) -> BatchingOptions:
        """Resolve a ``BatchingParameters``: unset wrapper fields take TF Serving's defaults."""
        if msg.DESCRIPTOR.full_name != BatchingParameters.DESCRIPTOR.full_name:
            raise TypeError(
                f"expected tensorflow.serving.BatchingParameters, got {msg.DESCRIPTOR.full_name}"
            )
        kwargs: dict[str, object] = {}
        for name in (
            "max_batch_size",
            "batch_timeout_micros",
            "max_enqueued_batches",
            "num_batch_threads",
            "thread_pool_name",
            "enable_large_batch_splitting",
            "max_execution_batch_size",
        ):
            if msg.HasField(name):
                kwargs[name] = getattr(msg, name).value
        kwargs["allowed_batch_sizes"] = tuple(msg.allowed_batch_sizes)
        kwargs["pad_variable_length_inputs"] = msg.pad_variable_length_inputs
        return cls(**kwargs)  # type: ignore[arg-type]

    def to_proto(self) -> Message:
        """A ``BatchingParameters`` with every value set explicitly (a self-describing file)."""
        msg = BatchingParameters()
        msg.max_batch_size.value = self.max_batch_size
        msg.batch_timeout_micros.value = self.batch_timeout_micros
        msg.max_enqueued_batches.value = self.max_enqueued_batches
        msg.num_batch_threads.value = self.num_batch_threads
        if self.thread_pool_name != "batch_threads":
            msg.thread_pool_name.value = self.thread_pool_name
        if self.enable_large_batch_splitting:
            msg.enable_large_batch_splitting.value = True
        if self.max_execution_batch_size is not None:
            msg.max_execution_batch_size.value = self.max_execution_batch_size
        msg.allowed_batch_sizes.extend(self.allowed_batch_sizes)
        msg.pad_variable_length_inputs = self.pad_variable_length_inputs
        return msg


def parse_batching_parameters(text: str, *, source: str = "<text>") -> Message:
    """Parse a text-format ``BatchingParameters``, checked like TF Serving (``ConfigError``)."""
    return parse_text_proto(text, BatchingParameters(), source, _validate)


def read_batching_parameters(path: str | os.PathLike[str]) -> Message:
    """Read a ``--batching_parameters_file``; ``ConfigError`` names the file on any problem."""
    return read_text_proto(path, BatchingParameters(), _validate)


def write_batching_parameters(
    path: str | os.PathLike[str], params: Message | BatchingOptions
) -> Path:
    """Validate and write a batching parameters file atomically; returns the path."""
    msg = params.to_proto() if isinstance(params, BatchingOptions) else params
    if msg.DESCRIPTOR.full_name != BatchingParameters.DESCRIPTOR.full_name:
        raise TypeError(
            f"expected BatchingParameters or BatchingOptions, got {type(params).__name__}"
        )
    return write_text_proto(path, msg, _validate)


def read_per_model_batching(version_dir: str | os.PathLike[str]) -> Message | None:
    """``<version_dir>/batching_params.pbtxt`` if present.

    What ``--enable_per_model_batching_parameters`` reads for each version; None when absent.
    """
    path = Path(version_dir) / PER_MODEL_BATCHING_FILE
    if not path.is_file():
        return None
    return read_batching_parameters(path)


def _validate(msg: Message) -> None:
    BatchingOptions.from_proto(msg)  # resolving checks every field as TF Serving does


def parse_sizes(text: str | Sequence[int]) -> tuple[int, ...]:
    """``"8,16,32"`` -> ``(8, 16, 32)`` (for CLIs); ``ConfigError`` on anything else."""
    if not isinstance(text, str):
        return tuple(int(s) for s in text)
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(
            f"allowed batch sizes must be comma-separated integers like 8,16,32; got {text!r}"
        ) from None
