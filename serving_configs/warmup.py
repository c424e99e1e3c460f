"""SavedModel warmup data: ``<version>/assets.extra/tf_serving_warmup_requests``.

A TFRecord file of serialized ``tensorflow_serving.apis.prediction_log_pb2.PredictionLog``
(one of predict_log / classify_log / regress_log / multi_inference_log), at most 1000
records. TF Serving replays them when it loads the version (``--enable_model_warmup``) and a
failing record fails the load, so we check on write what it checks on read.

The TFRecord framing comes from TensorFlow's own record writer/reader: a correct framing needs
CRC32C, which no installed library provides (a pure-Python CRC32C would take minutes on image
payloads), and anything that writes or replays warmup data works with a SavedModel and has
TensorFlow loaded anyway. TensorFlow is imported lazily, only by these two functions.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import tfsuite.protos  # noqa: F401  - tensorflow.core protos without importing TF's runtime

# isort: split
from google.protobuf.message import DecodeError, Message
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    predict_pb2,
    prediction_log_pb2,
    regression_pb2,
)

from tfsuite.atomic import atomic_path
from tfsuite.serving_configs.errors import ConfigError

__all__ = [
    "MAX_WARMUP_RECORDS",
    "WARMUP_DIR",
    "WARMUP_FILE",
    "PredictionLog",
    "as_prediction_log",
    "read_warmup_requests",
    "warmup_path",
    "write_warmup_requests",
]

PredictionLog = prediction_log_pb2.PredictionLog

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
#: ``WarmupConsts::kMaxNumRecords``.
MAX_WARMUP_RECORDS = 1000

# PredictionLog.log_type values TF Serving can replay (session_run_log / predict_streamed_log
# make it fail with "Unsupported log_type for warmup").
_SUPPORTED = ("predict_log", "classify_log", "regress_log", "multi_inference_log")

_WRAP: dict[type[Message], str] = {
    predict_pb2.PredictRequest: "predict_log",
    classification_pb2.ClassificationRequest: "classify_log",
    regression_pb2.RegressionRequest: "regress_log",
    inference_pb2.MultiInferenceRequest: "multi_inference_log",
}


def warmup_path(version_dir: str | os.PathLike[str]) -> Path:
    """Where TF Serving looks for warmup data in a SavedModel version dir."""
    return Path(version_dir) / WARMUP_DIR / WARMUP_FILE


def as_prediction_log(item: Message) -> PredictionLog:
    """Wrap a Predict/Classification/Regression/MultiInference request (or pass a log through)."""
    if isinstance(item, PredictionLog):
        log = item
    else:
        field = _WRAP.get(type(item))
        if field is None:
            raise ConfigError(
                f"cannot use a {type(item).__name__} as warmup data; give PredictionLog, "
                "PredictRequest, ClassificationRequest, RegressionRequest or MultiInferenceRequest"
            )
        log = PredictionLog()
        getattr(log, field).request.CopyFrom(item)
    kind = log.WhichOneof("log_type")
    if kind not in _SUPPORTED:
        raise ConfigError(f"Unsupported log_type for warmup: {kind or 'none set'}")
    return log


def write_warmup_requests(version_dir: str | os.PathLike[str], requests: Iterable[Message]) -> Path:
    """Write warmup records into ``version_dir`` atomically; returns the file's path.

    Accepts ``PredictionLog`` messages or bare requests (wrapped into the matching log type).
    """
    logs = [as_prediction_log(r) for r in requests]
    if not logs:
        raise ConfigError("no warmup requests given; pass at least one request")
    if len(logs) > MAX_WARMUP_RECORDS:
        raise ConfigError(
            f"{len(logs)} warmup requests given; TF Serving reads at most {MAX_WARMUP_RECORDS} "
            "(Number of warmup records exceeds the maximum)"
        )
    vdir = Path(version_dir)
    if not vdir.is_dir():
        raise ConfigError(
            f"{vdir}: not a directory; warmup data goes into a SavedModel version dir"
        )
    target = warmup_path(vdir)
    target.parent.mkdir(exist_ok=True)

    import tensorflow as tf  # lazy: see module docstring

    with atomic_path(target) as tmp, tf.io.TFRecordWriter(str(tmp)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return target


def read_warmup_requests(version_dir: str | os.PathLike[str]) -> list[PredictionLog]:
    """Read and check a version's warmup records; ``[]`` when it has none (warmup is optional)."""
    path = warmup_path(version_dir)
    if not path.is_file():
        return []

    import tensorflow as tf  # lazy: see module docstring

    logs: list[PredictionLog] = []
    try:
        for index, record in enumerate(tf.data.TFRecordDataset(str(path)).as_numpy_iterator()):
            if index >= MAX_WARMUP_RECORDS:
                raise ConfigError(
                    f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}"
                )
            log = PredictionLog()
            try:
                log.ParseFromString(record)
            except DecodeError:
                raise ConfigError(
                    f"Failed to parse warmup record {index} ({len(record)} bytes) from {path}"
                ) from None
            try:
                logs.append(as_prediction_log(log))
            except ConfigError as exc:
                raise ConfigError(f"{path}: record {index}: {exc}") from None
    except tf.errors.DataLossError as exc:
        raise ConfigError(
            f"{path}: {_tf_reason(exc.message)}. "
            "Please verify your warmup data is in TFRecord format."
        ) from None
    return logs


def _tf_reason(message: str) -> str:
    """TF's eager error text without the op/device decoration around the reason."""
    message = re.sub(r"\{\{function_node [^}]*\}\}", "", message)
    message = re.sub(r"\s*\[Op:[^\]]*\].*$", "", message, flags=re.DOTALL)
    return " ".join(message.split())
