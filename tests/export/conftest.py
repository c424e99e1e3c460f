"""Tiny deterministic models for the export tests, built once per session.

Frozen TF1-style graphs (a detector with the Object Detection API's signature and real NMS,
a classifier), a TF2 SavedModel with variables and a Keras file. Small on purpose: the export
area's whole test budget is ~150 s on two shared cores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

NUM_CLASSES = 10


def _weights(rng: np.random.Generator, *shape: int) -> np.ndarray:
    fan_in = int(np.prod(shape[:-1]))
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def build_tiny_detector(path: Path, seed: int = 0) -> Path:
    """uint8 image_tensor [None,None,None,3] -> the four detection outputs (NMS in the graph)."""
    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name="image_tensor")
        x = tf.image.resize(tf.cast(image, tf.float32) / 255.0, [64, 64])
        for i, (cin, cout) in enumerate([(3, 16), (16, 64), (64, 64)]):
            x = tf.nn.relu(
                tf.nn.conv2d(
                    x,
                    tf.constant(_weights(rng, 3, 3, cin, cout), name=f"conv{i}/weights"),
                    2,
                    "SAME",
                )
            )
            # a batch-norm-like scale/shift that the optimized variant can fold
            x = x * tf.constant(np.full(cout, 1.1, np.float32)) + tf.constant(
                np.full(cout, 0.01, np.float32)
            )
        # 8x8 grid, one anchor per cell
        box_w = tf.constant(_weights(rng, 1, 1, 64, 4) * 0.1, name="box_head/weights")
        cls_w = tf.constant(_weights(rng, 1, 1, 64, NUM_CLASSES) * 3.0, name="class_head/weights")
        deltas = tf.reshape(tf.nn.conv2d(x, box_w, 1, "SAME"), [-1, 64, 4])
        logits = tf.reshape(tf.nn.conv2d(x, cls_w, 1, "SAME"), [-1, 64, NUM_CLASSES])
        cy, cx = np.meshgrid((np.arange(8) + 0.5) / 8, (np.arange(8) + 0.5) / 8, indexing="ij")
        anchors = tf.constant(np.stack([cy.ravel(), cx.ravel()], 1).astype(np.float32))
        center = anchors + deltas[..., :2] * 0.1
        size = 0.2 * tf.exp(tf.clip_by_value(deltas[..., 2:], -1.0, 1.0))
        boxes = tf.clip_by_value(tf.concat([center - size / 2, center + size / 2], -1), 0.0, 1.0)
        nms = tf.image.combined_non_max_suppression(
            tf.expand_dims(boxes, 2),
            tf.sigmoid(logits),
            max_output_size_per_class=10,
            max_total_size=100,
            iou_threshold=0.5,
            score_threshold=0.05,
            pad_per_class=False,
            clip_boxes=True,
        )
        tf.identity(nms.nmsed_boxes, name="detection_boxes")
        tf.identity(nms.nmsed_scores, name="detection_scores")
        tf.identity(nms.nmsed_classes + 1.0, name="detection_classes")
        tf.cast(nms.valid_detections, tf.float32, name="num_detections")
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path


def build_tiny_classifier(path: Path, seed: int = 1) -> Path:
    """float32 input [None,32,32,3] -> probabilities [None,10]."""
    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 32, 32, 3], name="input")
        h = tf.nn.relu(
            tf.nn.conv2d(
                x, tf.constant(_weights(rng, 3, 3, 3, 32), name="conv1/weights"), 1, "SAME"
            )
        )
        h = tf.nn.relu(
            tf.nn.conv2d(
                h, tf.constant(_weights(rng, 3, 3, 32, 64), name="conv2/weights"), 2, "SAME"
            )
        )
        h = tf.reduce_mean(h, axis=[1, 2])
        logits = tf.matmul(h, tf.constant(_weights(rng, 64, NUM_CLASSES) * 4.0, name="fc/weights"))
        tf.nn.softmax(tf.identity(logits), name="probabilities")
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path


class _TinyModule(tf.Module):
    def __init__(self, seed: int = 2) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.w1 = tf.Variable(_weights(rng, 3, 3, 3, 48))
        self.w2 = tf.Variable(_weights(rng, 48, NUM_CLASSES) * 4.0)

    @tf.function(input_signature=[tf.TensorSpec([None, 24, 24, 3], tf.float32, name="pixels")])
    def serve(self, pixels: tf.Tensor) -> dict[str, tf.Tensor]:
        h = tf.reduce_mean(tf.nn.relu(tf.nn.conv2d(pixels, self.w1, 1, "SAME")), axis=[1, 2])
        return {"scores": tf.nn.softmax(tf.matmul(h, self.w2))}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_models")
    module = _TinyModule()
    saved = root / "classifier_saved_model"
    tf.saved_model.save(module, str(saved), signatures={"serving_default": module.serve})
    return {
        "detector": build_tiny_detector(root / "detector.pb"),
        "classifier": build_tiny_classifier(root / "classifier.pb"),
        "saved_model": saved,
    }


@pytest.fixture(scope="session")
def tiny_detector_pb(tiny_models: dict[str, Path]) -> Path:
    return tiny_models["detector"]


@pytest.fixture(scope="session")
def tiny_classifier_pb(tiny_models: dict[str, Path]) -> Path:
    return tiny_models["classifier"]


@pytest.fixture(scope="session")
def tiny_saved_model(tiny_models: dict[str, Path]) -> Path:
    return tiny_models["saved_model"]


def build_tiny_keras(path: Path, seed: int = 3) -> Path:
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(48, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="probs")(x)
    keras.Model(inputs, outputs).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_keras(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_keras(tmp_path_factory.mktemp("tiny_keras") / "model.keras")


@pytest.fixture(scope="session")
def tiny_detector_export(tiny_detector_pb: Path, tmp_path_factory: pytest.TempPathFactory):
    """Every CPU variant plus the two TF-TRT ones (recorded skipped), exported once."""
    from tfsuite.export.api import export_variants

    base = tmp_path_factory.mktemp("detector_export") / "detector"
    manifest = export_variants(
        tiny_detector_pb,
        base,
        variants="original,weight_quant,trt_fp16,trt_int8,optimized,fp16_weights",
        progress=False,
    )
    return base, manifest
