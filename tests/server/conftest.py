"""Test models for the embedded server, built once per session (small, deterministic).

Fixtures (shared by the core and the gRPC/REST adapter tests):

- ``half_plus_two_base``: base path ``<dir>/1`` — TF2 SavedModel, ``y = 0.5 * x + 2``.
  Signatures: ``serving_default`` (predict, input ``x`` float32 [None] -> ``y``),
  ``classify_x_to_y`` (input ``inputs`` serialized tf.Example with float feature ``x``
  -> ``scores`` [N, 1]), ``regress_x_to_y`` (``inputs`` -> ``outputs`` [N]).
  ``{"instances": [1.0, 2.0, 5.0]}`` predicts ``[2.5, 3.0, 4.5]``.
- ``tf1_half_plus_two_base``: base path ``<dir>/1`` — TF1 SavedModel written with
  ``tf.compat.v1.saved_model.Builder``: ``serving_default`` (predict ``x`` [None] -> ``y``),
  ``classify_x_to_y`` (classification signature: ``inputs`` DT_STRING -> ``scores``),
  ``classify_x_to_classes`` (``classes`` strings + ``scores``),
  ``regress_x_to_y`` (regression signature: ``inputs`` -> ``outputs``).
- ``string_model_base``: base path ``<dir>/1`` — ``serving_default`` takes ``text`` (string
  [None]) and returns ``length`` (int32) and ``upper`` (string); signature ``half`` takes
  ``h`` float16 [None] -> ``doubled`` float16; signature ``rows`` takes ``seq`` int32
  [None, None] -> ``total`` int32 [None] (row sums; for pad_variable_length_inputs).
- ``broken_model_base``: base path ``<dir>/1`` whose saved_model.pb is not a SavedModel.
- ``model_dirs``: ``dict[str, Path]`` of single SavedModel dirs by kind (``half_plus_two``,
  ``half_plus_three`` = 0.5x+3, ``tf1``, ``strings``, ``broken``) to copy from.
- ``make_model_base``: factory ``make_model_base(versions: dict[int, str], name="m") -> Path``
  building a fresh, writable base path in ``tmp_path`` by copying ``model_dirs`` kinds into
  version dirs, e.g. ``make_model_base({1: "half_plus_two", 2: "half_plus_three"})``.
  Use it for tests that add/remove versions or assign labels.
- ``add_version(base, version, kind)``: atomically publishes a version (copy + rename),
  so a polling manager never sees a half-written dir.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _build_half_plus(out: Path, offset: float) -> Path:
    import tensorflow as tf

    class HalfPlus(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = tf.Variable(0.5, dtype=tf.float32)
            self.b = tf.Variable(offset, dtype=tf.float32)

        def _y(self, x: tf.Tensor) -> tf.Tensor:
            return self.a * x + self.b

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def predict(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": self._y(x)}

        def _parse(self, inputs: tf.Tensor) -> tf.Tensor:
            feats = tf.io.parse_example(inputs, {"x": tf.io.FixedLenFeature([1], tf.float32)})
            return feats["x"]

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def classify(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"scores": self._y(self._parse(inputs))}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def regress(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"outputs": tf.reshape(self._y(self._parse(inputs)), [-1])}

    m = HalfPlus()
    tf.saved_model.save(
        m,
        str(out),
        signatures={
            "serving_default": m.predict,
            "classify_x_to_y": m.classify,
            "regress_x_to_y": m.regress,
        },
    )
    return out


def _build_tf1(out: Path) -> Path:
    import tensorflow as tf

    v1 = tf.compat.v1
    sig = v1.saved_model.signature_def_utils
    with tf.Graph().as_default(), v1.Session() as sess:
        a = v1.Variable(0.5, name="a")
        b = v1.Variable(2.0, name="b")
        x = v1.placeholder(tf.float32, shape=[None], name="x")
        y = tf.add(a * x, b, name="y")
        serialized = v1.placeholder(tf.string, shape=[None], name="tf_example")
        parsed = v1.parse_example(serialized, {"x": v1.FixedLenFeature([1], tf.float32)})
        y_ex = tf.add(a * parsed["x"], b, name="y_from_examples")  # [N, 1]
        classes = tf.constant([["half_plus_two"]]) + tf.zeros_like(y_ex, dtype=tf.string)
        sess.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(str(out))
        builder.add_meta_graph_and_variables(
            sess,
            [v1.saved_model.tag_constants.SERVING],
            signature_def_map={
                "serving_default": sig.predict_signature_def({"x": x}, {"y": y}),
                "classify_x_to_y": sig.classification_signature_def(serialized, None, y_ex),
                "classify_x_to_classes": sig.classification_signature_def(
                    serialized, classes, y_ex
                ),
                "regress_x_to_y": sig.regression_signature_def(serialized, tf.reshape(y_ex, [-1])),
                "predict_raw": sig.build_signature_def(
                    {"x": v1.saved_model.utils.build_tensor_info(x)},
                    {"y": v1.saved_model.utils.build_tensor_info(y)},
                    v1.saved_model.signature_constants.PREDICT_METHOD_NAME,
                ),
            },
        )
        builder.save()
    return out


def _build_strings(out: Path) -> Path:
    import tensorflow as tf

    class Strings(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def text(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"length": tf.strings.length(text), "upper": tf.strings.upper(text)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float16, name="h")])
        def half(self, h: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"doubled": h * tf.constant(2.0, tf.float16)}

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="seq")])
        def rows(self, seq: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"total": tf.reduce_sum(seq, axis=1)}

    m = Strings()
    tf.saved_model.save(
        m, str(out), signatures={"serving_default": m.text, "half": m.half, "rows": m.rows}
    )
    return out


def _build_broken(out: Path) -> Path:
    out.mkdir(parents=True)
    (out / "saved_model.pb").write_bytes(b"this is not a SavedModel protobuf")
    (out / "variables").mkdir()
    return out


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("server_models")
    return {
        "half_plus_two": _build_half_plus(root / "half_plus_two", 2.0),
        "half_plus_three": _build_half_plus(root / "half_plus_three", 3.0),
        "tf1": _build_tf1(root / "tf1"),
        "strings": _build_strings(root / "strings"),
        "broken": _build_broken(root / "broken"),
    }


def _publish(base: Path, version: int, src: Path) -> Path:
    """Copy ``src`` to ``base/<version>`` via a temp dir + rename (pollers never see halves)."""
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{version}"
    shutil.copytree(src, tmp)
    target = base / str(version)
    os.rename(tmp, target)
    return target


def _base_of(root: Path, name: str, kind: str, model_dirs: dict[str, Path]) -> Path:
    base = root / name
    _publish(base, 1, model_dirs[kind])
    return base


@pytest.fixture(scope="session")
def half_plus_two_base(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path]
) -> Path:
    return _base_of(tmp_path_factory.mktemp("bases"), "half_plus_two", "half_plus_two", model_dirs)


@pytest.fixture(scope="session")
def tf1_half_plus_two_base(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path]
) -> Path:
    return _base_of(tmp_path_factory.mktemp("bases"), "tf1_half_plus_two", "tf1", model_dirs)


@pytest.fixture(scope="session")
def string_model_base(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path]
) -> Path:
    return _base_of(tmp_path_factory.mktemp("bases"), "strings", "strings", model_dirs)


@pytest.fixture(scope="session")
def broken_model_base(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path]
) -> Path:
    return _base_of(tmp_path_factory.mktemp("bases"), "broken", "broken", model_dirs)


@pytest.fixture
def make_model_base(
    tmp_path: Path, model_dirs: dict[str, Path]
) -> Callable[..., Path]:
    def make(versions: dict[int, str], name: str = "m") -> Path:
        base = tmp_path / name
        base.mkdir(parents=True, exist_ok=True)
        for version, kind in versions.items():
            _publish(base, version, model_dirs[kind])
        return base

    return make


@pytest.fixture
def add_version(model_dirs: dict[str, Path]) -> Callable[[Path, int, str], Path]:
    def add(base: Path, version: int, kind: str) -> Path:
        return _publish(base, version, model_dirs[kind])

    return add
