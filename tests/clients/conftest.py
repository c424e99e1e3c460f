"""One embedded ModelServer per session serving the bundled detector and classifier.

Both models are the exporter's base paths (``detector_base`` / ``classifier_base`` from
tests/conftest.py: version 1 ``original``, version 2 ``weight_quant``), listed in one
models.config written by ``tfsuite.serving_configs`` (specific versions, labelled). The
server listens on ephemeral gRPC and REST ports on 127.0.0.1.

Fixtures: ``serving`` (a :class:`Serving` with addresses and model names),
``image_dir`` (synthetic JPEG/PNG images written with cv2.imwrite, plus one broken file).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DETECTOR = "ssd_mobilenet_v2_tiny"
CLASSIFIER = "mobilenet_v2"


@dataclass(frozen=True)
class Serving:
    grpc: str
    """127.0.0.1:PORT of the gRPC API."""
    rest: str
    """127.0.0.1:PORT of the REST API."""
    detector: str = DETECTOR
    classifier: str = CLASSIFIER


@pytest.fixture(scope="session")
def serving(
    detector_base: Path, classifier_base: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serving]:
    from tfsuite.server.app import ModelServer
    from tfsuite.server.options import ServerOptions
    from tfsuite.serving_configs.model_config import (
        model_config_for,
        model_server_config,
        write_model_config,
    )

    config = model_server_config(
        [model_config_for(DETECTOR, detector_base), model_config_for(CLASSIFIER, classifier_base)]
    )
    path = write_model_config(tmp_path_factory.mktemp("clients_config") / "models.config", config)
    options = ServerOptions(port=-1, rest_api_port=-1, model_config_file=str(path))
    with ModelServer(options) as server:
        yield Serving(grpc=f"127.0.0.1:{server.grpc_port}", rest=f"127.0.0.1:{server.rest_port}")


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six synthetic images of three sizes (colored rectangles on flat backgrounds) and one
    file with an image suffix that is not an image."""
    import cv2

    d = tmp_path_factory.mktemp("clients_images")
    rng = np.random.default_rng(7)
    sizes = [(240, 320), (240, 320), (300, 200), (300, 200), (128, 128), (240, 320)]
    for i, (h, w) in enumerate(sizes):
        img = np.full((h, w, 3), rng.integers(0, 255, 3), dtype=np.uint8)
        for _ in range(3):
            x1, y1 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
            x2, y2 = x1 + int(rng.integers(20, w // 2)), y1 + int(rng.integers(20, h // 2))
            cv2.rectangle(img, (x1, y1), (x2, y2), rng.integers(0, 255, 3).tolist(), -1)
        suffix = ".png" if i % 2 else ".jpg"
        assert cv2.imwrite(str(d / f"{i + 1:06d}{suffix}"), img)
    (d / "000099.jpg").write_bytes(b"this is not a jpeg")
    return d


@pytest.fixture(scope="session")
def trivial_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``y = 0.5 * x + 2`` (input ``x`` float32 [None]) as version 1 of a base path: the
    cheapest model a server can run, for transport-level tests (TLS)."""
    import tensorflow as tf

    class HalfPlusTwo(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def predict(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": 0.5 * x + 2.0}

    base = tmp_path_factory.mktemp("clients_trivial") / "trivial"
    module = HalfPlusTwo()
    tf.saved_model.save(module, str(base / "1"), signatures={"serving_default": module.predict})
    return base


@pytest.fixture(scope="session")
def tf_example_model_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TF1 SavedModel (version 1) with TF Serving's classification and regression
    signatures over ``tf.Example`` protos with a float feature ``x``: ``classify`` gives
    classes ["low", "high"] with scores [1 - s, s] where s = sigmoid(x); ``regress`` gives
    0.5 * x + 2. The Classify/Regress APIs only accept such signatures."""
    import tensorflow as tf

    tf1 = tf.compat.v1
    base = tmp_path_factory.mktemp("clients_tf_example_model") / "examples_model"
    graph = tf.Graph()
    with graph.as_default():
        serialized = tf1.placeholder(tf.string, [None], name="tf_example")
        x = tf1.io.parse_example(serialized, {"x": tf1.io.FixedLenFeature([1], tf.float32)})["x"]
        s = tf.sigmoid(x)
        scores = tf.concat([1.0 - s, s], axis=1)
        classes = tf.tile(tf.constant([["low", "high"]]), [tf.shape(x)[0], 1])
        y = 0.5 * x + 2.0
        with tf1.Session(graph=graph) as sess:
            builder = tf1.saved_model.Builder(str(base / "1"))
            classify = tf1.saved_model.classification_signature_def(serialized, classes, scores)
            regress = tf1.saved_model.regression_signature_def(serialized, y)
            builder.add_meta_graph_and_variables(
                sess,
                [tf1.saved_model.tag_constants.SERVING],
                signature_def_map={
                    "serving_default": classify,
                    "classify": classify,
                    "regress": regress,
                },
            )
            builder.save()
    return base
