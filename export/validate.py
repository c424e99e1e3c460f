"""Checking a built variant against the original on the same fixed, deterministic inputs.

Metrics (all recorded; which ones gate depends on the model kind):

* ``max_abs_error`` / ``max_rel_error`` over every float output (rel = abs / (max|orig| + eps));
  gates ``generic`` and ``classifier`` models.
* ``top1_agreement`` (classifiers): share of inputs whose argmax is the same.
* ``detection_agreement`` (detectors): share of the original's detections (score >= threshold)
  matched by a variant detection of the same class with IoU >= 0.5. Box order may legitimately
  change after quantization, so for detectors the errors are measured over matched pairs
  (box coordinates and scores, both in [0, 1]) and only the agreement gates.

The comparison itself is TensorFlow-free and lives in :mod:`tfsuite.export.agreement`
(re-exported here); this module runs the graphs that produce the outputs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfsuite.export.agreement import (
    DEFAULT_TOLERANCES,
    compare_outputs,
    detection_agreement,
    synthetic_images,
)
from tfsuite.export.errors import ExportUsageError
from tfsuite.export.graphs import Endpoint, FrozenModel
from tfsuite.export.saving import SERVING_KEY

__all__ = [
    "DEFAULT_TOLERANCES",
    "FixedInputs",
    "compare_outputs",
    "detection_agreement",
    "fixed_inputs",
    "run_reference",
    "run_saved_model",
    "synthetic_images",
]

DEFAULT_BATCH = 4
DEFAULT_IMAGE_SIDE = 128

FixedInputs = dict[str, np.ndarray]


def _concrete_shape(shape: Sequence[int | None] | None, batch: int) -> list[int]:
    if shape is None:
        return [batch]
    # Unknown batch -> ``batch``; other unknown dims (image height/width) -> a fixed side.
    return [
        batch if i == 0 and d is None else (DEFAULT_IMAGE_SIDE if d is None else int(d))
        for i, d in enumerate(shape)
    ]


def fixed_inputs(
    inputs: Sequence[Endpoint], batch: int = DEFAULT_BATCH, seed: int = 0
) -> FixedInputs:
    """The same inputs every variant is run on: images for image-shaped inputs, else seeded noise."""
    out: FixedInputs = {}
    for index, endpoint in enumerate(inputs):
        shape = _concrete_shape(endpoint.shape, batch)
        dtype = np.dtype(endpoint.dtype) if endpoint.dtype != "string" else None
        image_like = len(shape) == 4 and shape[-1] in (1, 3, 4)
        if dtype is None:
            raise ExportUsageError(
                f"input {endpoint.key!r} is a string tensor: validation needs numeric inputs (export a numeric-input signature)"
            )
        if image_like:
            images = synthetic_images(shape[0], shape[1], shape[2], shape[3], seed=seed + index)
            out[endpoint.key] = (
                images.astype(dtype)
                if dtype.kind in "ui"
                else (images.astype(dtype) / 255.0).astype(dtype)
            )
        elif dtype.kind == "f":
            out[endpoint.key] = (
                np.random.default_rng(seed + index).standard_normal(shape).astype(dtype)
            )
        elif dtype.kind == "b":
            out[endpoint.key] = (
                np.random.default_rng(seed + index).integers(0, 2, shape).astype(bool)
            )
        else:
            out[endpoint.key] = (
                np.random.default_rng(seed + index).integers(0, 10, shape).astype(dtype)
            )
    return out


def run_reference(model: FrozenModel, feeds: FixedInputs) -> dict[str, np.ndarray]:
    """Run the source graph itself (no SavedModel in between): the ground truth."""
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(model.graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        values = session.run(
            [e.tensor for e in model.outputs],
            feed_dict={graph.get_tensor_by_name(e.tensor): feeds[e.key] for e in model.inputs},
        )
    return {e.key: np.asarray(v) for e, v in zip(model.outputs, values)}


def run_saved_model(
    export_dir: str | os.PathLike[str], feeds: FixedInputs
) -> dict[str, np.ndarray]:
    """Load a version dir the way the embedded server does and call ``serving_default``."""
    loaded = tf.saved_model.load(str(export_dir), tags=["serve"])
    fn = loaded.signatures[SERVING_KEY]
    result = fn(**{k: tf.constant(v) for k, v in feeds.items()})
    return {k: v.numpy() for k, v in result.items()}
