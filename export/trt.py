"""TF-TRT variants (``trt_fp32``, ``trt_fp16``, ``trt_int8``) through ``tf.experimental.tensorrt``.

TF-TRT exists only in TensorFlow <= 2.17 built with TensorRT (the NGC TensorFlow container).
Every newer wheel raises ``RuntimeError: Tensorflow has not been built with TensorRT support.``
when the converter is created; that error is caught and turned into a ``skipped`` record that
says what to run instead. The converter is injectable so the code past that point (engine
building for each batch size, INT8 calibration) can be exercised with a stand-in.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tfsuite.export.errors import ExportUsageError
from tfsuite.export.graphs import Endpoint
from tfsuite.export.validate import fixed_inputs

__all__ = [
    "IMAGE_SUFFIXES",
    "TRT_PRECISIONS",
    "TensorRTUnavailable",
    "TrtOptions",
    "build_trt",
    "calibration_images",
    "converter_kwargs",
    "skip_reason",
]

log = logging.getLogger(__name__)

TRT_PRECISIONS = {"trt_fp32": "FP32", "trt_fp16": "FP16", "trt_int8": "INT8"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")
COMPOSE_HINT = (
    "SOURCE_DIR=<dir> SOURCE_NAME=<model file> MODELS_DIR=<models dir> MODEL_NAME=<name> "
    "docker compose -f compose/docker-compose.yml --profile export run --rm exporter"
)

ConverterFactory = Callable[..., Any]


class TensorRTUnavailable(Exception):
    """This TensorFlow cannot build TF-TRT graphs; ``str()`` is the exact reason."""


@dataclass
class TrtOptions:
    """The knobs of ``tf.experimental.tensorrt.Converter`` the CLI exposes."""

    max_workspace_bytes: int = 1 << 30
    """``max_workspace_size_bytes``: scratch memory TensorRT may use per engine."""
    minimum_segment_size: int = 3
    """Smallest subgraph (in nodes) worth replacing with a TensorRT engine."""
    max_cached_engines: int = 1
    """``maximum_cached_engines``: engines kept per TRTEngineOp (one per input shape)."""
    batch_sizes: Sequence[int] = (1,)
    """Engines are pre-built for these batch sizes (``converter.build``)."""
    calibration_data: Path | None = None
    """Directory of images for INT8 calibration; synthetic images when ``None``."""
    calibration_batches: int = 4
    """How many batches INT8 calibration runs."""
    converter_factory: ConverterFactory | None = field(default=None, repr=False)
    """Stand-in for ``tf.experimental.tensorrt.Converter`` (tests only)."""


def skip_reason(exc: BaseException) -> str:
    return (
        f"TensorRT is not available in this TensorFlow {tf.__version__} build "
        f"({type(exc).__name__}: {exc}); TF-TRT needs TF <= 2.17 + TensorRT on the target GPU: "
        f"run {COMPOSE_HINT} (see compose/README.md)"
    )


def calibration_images(directory: Path) -> list[Path]:
    """Image files in ``directory``; a usage error when there are none."""
    if not directory.is_dir():
        raise ExportUsageError(f"--calibration-data {str(directory)!r} is not a directory")
    files = sorted(
        p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise ExportUsageError(
            f"--calibration-data {str(directory)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})"
        )
    return files


def converter_kwargs(
    precision_mode: str, saved_model_dir: Path, options: TrtOptions
) -> dict[str, Any]:
    """Arguments for ``tf.experimental.tensorrt.Converter`` (TF 2.17 keyword names)."""
    return {
        "input_saved_model_dir": str(saved_model_dir),
        "input_saved_model_tags": ["serve"],
        "input_saved_model_signature_key": "serving_default",
        "precision_mode": precision_mode,
        "max_workspace_size_bytes": int(options.max_workspace_bytes),
        "minimum_segment_size": int(options.minimum_segment_size),
        "maximum_cached_engines": int(options.max_cached_engines),
        "use_calibration": precision_mode == "INT8",
        "allow_build_at_runtime": True,
    }


def _load_images(files: Sequence[Path], height: int, width: int) -> np.ndarray:
    import cv2

    images = []
    for file in files:
        img = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if img is None:
            log.warning("skipping unreadable calibration image %s", file)
            continue
        images.append(cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), (width, height)))
    if not images:
        raise ExportUsageError("no calibration image could be read")
    return np.stack(images)


def _batches(
    inputs: Sequence[Endpoint], batch: int, options: TrtOptions, seed: int
) -> tuple[tf.Tensor, ...]:
    feeds = fixed_inputs(inputs, batch=batch, seed=seed)
    if options.calibration_data is not None:
        for endpoint in inputs:
            arr = feeds[endpoint.key]
            if arr.ndim == 4 and arr.shape[-1] == 3:
                files = calibration_images(options.calibration_data)
                pick = [files[(seed * batch + i) % len(files)] for i in range(batch)]
                imgs = _load_images(pick, arr.shape[1], arr.shape[2])
                feeds[endpoint.key] = (
                    imgs.astype(arr.dtype)
                    if arr.dtype.kind in "ui"
                    else (imgs / 255.0).astype(arr.dtype)
                )
    # Positional order = the signature's sorted input keys (how the converted function takes them).
    return tuple(tf.constant(feeds[e.key]) for e in sorted(inputs, key=lambda e: e.key))


def build_trt(
    variant: str,
    saved_model_dir: Path,
    out_dir: Path,
    inputs: Sequence[Endpoint],
    options: TrtOptions,
) -> dict[str, Any]:
    """Convert, pre-build engines, save. Raises :class:`TensorRTUnavailable` without TensorRT."""
    precision = TRT_PRECISIONS[variant]
    kwargs = converter_kwargs(precision, saved_model_dir, options)
    factory = options.converter_factory
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    # TF logs its own ERROR line before raising; the skip reason says the same thing once.
    tf_logger.setLevel(logging.CRITICAL)
    try:
        if factory is None:
            factory = tf.experimental.tensorrt.Converter
        converter = factory(**kwargs)
    except (RuntimeError, ImportError, AttributeError, NotImplementedError) as exc:
        raise TensorRTUnavailable(skip_reason(exc)) from exc
    finally:
        tf_logger.setLevel(level)

    def calibration_fn() -> Iterator[tuple[tf.Tensor, ...]]:
        for step in range(options.calibration_batches):
            yield _batches(inputs, max(options.batch_sizes), options, seed=100 + step)

    def build_fn() -> Iterator[tuple[tf.Tensor, ...]]:
        for batch in options.batch_sizes:
            yield _batches(inputs, batch, options, seed=0)

    if precision == "INT8":
        converter.convert(calibration_input_fn=calibration_fn)
    else:
        converter.convert()
    converter.build(input_fn=build_fn)
    converter.save(os.fspath(out_dir))
    return {k: v for k, v in kwargs.items() if k != "input_saved_model_dir"} | {
        "batch_sizes": list(options.batch_sizes),
        "calibration": str(options.calibration_data)
        if options.calibration_data
        else ("synthetic" if precision == "INT8" else None),
    }
