"""Writing a frozen GraphDef as a TF Serving SavedModel (``serve`` tag, ``serving_default``).

The graph is stored as a TF1-style SavedModel with no variables: its constants live in
``saved_model.pb`` exactly as the variant builder left them, so an eight-bit or half-precision
graph stays that small on disk (a TF2 ``tf.saved_model.save`` would re-expand them into float
variables). Both ``tf.saved_model.load(dir, tags=["serve"])`` and TF Serving load this layout.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from tfsuite.export.graphs import Endpoint

__all__ = ["SERVING_KEY", "dir_size", "write_saved_model"]

SERVING_KEY = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"


def _tensor_info(tensor: tf.Tensor) -> meta_graph_pb2.TensorInfo:
    # Built by hand: the v1 helper for this logs a deprecation warning on every call.
    return meta_graph_pb2.TensorInfo(
        name=tensor.name, dtype=tensor.dtype.as_datatype_enum, tensor_shape=tensor.shape.as_proto()
    )


def write_saved_model(
    graph_def: tf.compat.v1.GraphDef,
    inputs: Sequence[Endpoint],
    outputs: Sequence[Endpoint],
    export_dir: str | os.PathLike[str],
) -> Path:
    """Write ``graph_def`` with one predict signature keyed by the endpoints' clean names."""
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
        signature = meta_graph_pb2.SignatureDef(method_name=PREDICT_METHOD)
        for target, endpoints in ((signature.inputs, inputs), (signature.outputs, outputs)):
            for e in endpoints:
                target[e.key].CopyFrom(_tensor_info(graph.get_tensor_by_name(e.tensor)))
        with tf.compat.v1.Session(graph=graph) as session:
            builder = tf.compat.v1.saved_model.Builder(str(export_dir))
            builder.add_meta_graph_and_variables(
                session,
                [tf.compat.v1.saved_model.tag_constants.SERVING],
                signature_def_map={SERVING_KEY: signature},
                strip_default_attrs=True,
            )
            builder.save()
    return Path(export_dir)


def dir_size(path: str | os.PathLike[str]) -> int:
    """Bytes on disk of every file under ``path``."""
    root = Path(path)
    if root.is_file():
        return root.stat().st_size
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
