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
- ``tfs_half_plus_two`` / ``tfs_half_plus_three`` (in ``model_dirs``): TF Serving's own
  testdata models rebuilt (TF1, reference variables, ``x`` of TensorInfo shape ``[?,1]``).
- ``tfserving_testdata``: those models in TF Serving's testdata layouts (``00000123``...)
  plus ``good_model_config.txt``.
- ``make_model_base``: factory ``make_model_base(versions: dict[int | str, str], name="m")
  -> Path`` building a fresh, writable base path in ``tmp_path`` by copying ``model_dirs``
  kinds into version dirs, e.g. ``make_model_base({1: "half_plus_two", "02": "tf1"})``
  (a str key is the dir's literal name).
  Use it for tests that add/remove versions or assign labels.
- ``add_version(base, version, kind)``: atomically publishes a version (copy + rename),
  so a polling manager never sees a half-written dir.
- ``start_dataplane``: factory ``start_dataplane(**ServerOptions fields) -> DataPlane``
  starting a DataPlane (no file-system polling, no load retries unless given), stopped
  after the test.
- ``capture_log``: factory ``capture_log(logger_name, level, wait_s) -> LogRecords`` attaching
  a :class:`log_records.LogRecords` handler (removed after the test) whose ``wait_for(fragment)`` waits for matching records.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from log_records import LogRecords  # type: ignore[import-not-found]

from tfsuite.atomic import atomic_write_dir
from tfsuite.server.dataplane import DataPlane
from tfsuite.server.options import ServerOptions

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


def _build_tfs_half_plus(out: Path, offset: float) -> Path:
    """TF Serving's own testdata model (``saved_model_half_plus_{two,three}.py``): a TF1
    graph with *reference* variables ``a``/``b``, ``x`` = the ``x`` feature of serialized
    tf.Examples (so its TensorInfo shape is ``[?,1]``), ``y = a * x + b``; signatures
    ``serving_default`` (predict x -> y), ``classify_x_to_y``, ``regress_x_to_y``."""
    import tensorflow as tf

    v1 = tf.compat.v1
    sig = v1.saved_model.signature_def_utils
    info = v1.saved_model.utils.build_tensor_info
    with tf.Graph().as_default(), v1.Session() as sess:
        a = v1.Variable(0.5, name="a", use_resource=False)
        b = v1.Variable(offset, name="b", use_resource=False)
        serialized = v1.placeholder(tf.string, shape=[None], name="tf_example")
        parsed = v1.parse_example(serialized, {"x": v1.FixedLenFeature([1], tf.float32)})
        x = tf.identity(parsed["x"], name="x")
        y = tf.add(tf.multiply(a, x), b, name="y")
        sess.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(str(out))
        builder.add_meta_graph_and_variables(
            sess,
            [v1.saved_model.tag_constants.SERVING],
            signature_def_map={
                "serving_default": sig.build_signature_def(
                    {"x": info(x)},
                    {"y": info(y)},
                    v1.saved_model.signature_constants.PREDICT_METHOD_NAME,
                ),
                "classify_x_to_y": sig.classification_signature_def(serialized, None, y),
                "regress_x_to_y": sig.regression_signature_def(serialized, y),
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
        "tfs_half_plus_two": _build_tfs_half_plus(root / "tfs_half_plus_two", 2.0),
        "tfs_half_plus_three": _build_tfs_half_plus(root / "tfs_half_plus_three", 3.0),
    }


@pytest.fixture(scope="session")
def tfserving_testdata(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path]
) -> dict[str, Path]:
    """TF Serving's ``servables/tensorflow/testdata`` layouts, built here (read-only):

    - ``half_plus_two``: ``saved_model_half_plus_two_cpu/00000123``;
    - ``two_versions``: ``saved_model_half_plus_two_2_versions/{00000123,00000124}``;
    - ``half_plus_three``: ``saved_model_half_plus_three/00000123``;
    - ``good_model_config``: ``good_model_config.txt`` serving half_plus_two and
      half_plus_three by those names.
    """
    root = tmp_path_factory.mktemp("tfserving_testdata")
    hp2, hp3 = model_dirs["tfs_half_plus_two"], model_dirs["tfs_half_plus_three"]
    half_plus_two = root / "saved_model_half_plus_two_cpu"
    _publish(half_plus_two, "00000123", hp2)
    two_versions = root / "saved_model_half_plus_two_2_versions"
    _publish(two_versions, "00000123", hp2)
    _publish(two_versions, "00000124", hp2)
    half_plus_three = root / "saved_model_half_plus_three"
    _publish(half_plus_three, "00000123", hp3)
    config = root / "good_model_config.txt"
    config.write_text(
        model_config_text(
            {"half_plus_two": (half_plus_two, ""), "half_plus_three": (half_plus_three, "")}
        )
    )
    return {
        "half_plus_two": half_plus_two,
        "two_versions": two_versions,
        "half_plus_three": half_plus_three,
        "good_model_config": config,
    }


def _publish(base: Path, version: int | str, src: Path) -> Path:
    """Copy ``src`` to ``base/<version>`` atomically (pollers never see halves); a str
    ``version`` is the dir's name as is (``"00000123"``)."""
    return atomic_write_dir(
        base / str(version), lambda tmp: shutil.copytree(src, tmp, dirs_exist_ok=True)
    )


def _base_of(root: Path, name: str, kind: str, model_dirs: dict[str, Path]) -> Path:
    base = root / name
    _publish(base, 1, model_dirs[kind])
    return base


def _session_base(fixture_name: str, dir_name: str, kind: str) -> Any:
    """A session fixture: base path ``dir_name`` with version 1 = the ``kind`` test model."""

    @pytest.fixture(scope="session", name=fixture_name)
    def base(tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path]) -> Path:
        return _base_of(tmp_path_factory.mktemp("bases"), dir_name, kind, model_dirs)

    return base


half_plus_two_base = _session_base("half_plus_two_base", "half_plus_two", "half_plus_two")
tf1_half_plus_two_base = _session_base("tf1_half_plus_two_base", "tf1_half_plus_two", "tf1")
string_model_base = _session_base("string_model_base", "strings", "strings")
broken_model_base = _session_base("broken_model_base", "broken", "broken")


def model_config_text(models: dict[str, tuple[Path, str]]) -> str:
    """A model_config_list text proto; models: name -> (base path, extra config fields)."""
    parts = [
        f'config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" {extra} }}'
        for name, (base, extra) in models.items()
    ]
    return "model_config_list { " + " ".join(parts) + " }"


@pytest.fixture(scope="session", name="model_config_text")
def model_config_text_fixture() -> Callable[[dict[str, tuple[Path, str]]], str]:
    """``model_config_text`` for test modules (conftest is not imported by them)."""
    return model_config_text


@pytest.fixture(scope="session")
def api_model_bases(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: dict[str, Path]
) -> dict[str, Path]:
    """The gRPC and REST API tests' models: hp2 (v1 half_plus_two, v2 half_plus_three),
    tf1 (classify/regress signatures), strings (DT_STRING). Read-only."""
    root = tmp_path_factory.mktemp("api_models")
    layout = {
        "hp2": {1: "half_plus_two", 2: "half_plus_three"},
        "tf1": {1: "tf1"},
        "strings": {1: "strings"},
    }
    for name, versions in layout.items():
        for version, kind in versions.items():
            _publish(root / name, version, model_dirs[kind])
    return {name: root / name for name in layout}


@pytest.fixture(scope="session")
def api_models_config(
    tmp_path_factory: pytest.TempPathFactory, api_model_bases: dict[str, Path]
) -> Path:
    """models.config for ``api_model_bases``: hp2 serves versions 1 and 2 with labels
    stable=1 and canary=2."""
    config = tmp_path_factory.mktemp("api_config") / "models.config"
    hp2_extra = (
        "model_version_policy { specific { versions: 1 versions: 2 } } "
        'version_labels { key: "stable" value: 1 } '
        'version_labels { key: "canary" value: 2 }'
    )
    config.write_text(
        model_config_text(
            {
                "hp2": (api_model_bases["hp2"], hp2_extra),
                "tf1": (api_model_bases["tf1"], ""),
                "strings": (api_model_bases["strings"], ""),
            }
        )
    )
    return config


@pytest.fixture(scope="session")
def float_examples() -> Callable[..., list[Any]]:
    """``float_examples(1.0, 2.0)`` -> tf.Examples with one float feature ``x`` each."""
    from tensorflow.core.example import example_pb2

    def make(*xs: float) -> list[Any]:
        out = []
        for x in xs:
            example = example_pb2.Example()
            example.features.feature["x"].float_list.value.append(x)
            out.append(example)
        return out

    return make


@pytest.fixture
def make_model_base(tmp_path: Path, model_dirs: dict[str, Path]) -> Callable[..., Path]:
    def make(versions: dict[int | str, str], name: str = "m") -> Path:
        base = tmp_path / name
        base.mkdir(parents=True, exist_ok=True)
        for version, kind in versions.items():
            _publish(base, version, model_dirs[kind])
        return base

    return make


@pytest.fixture
def add_version(model_dirs: dict[str, Path]) -> Callable[[Path, int | str, str], Path]:
    def add(base: Path, version: int | str, kind: str) -> Path:
        return _publish(base, version, model_dirs[kind])

    return add


@pytest.fixture
def start_dataplane() -> Iterator[Callable[..., DataPlane]]:
    started: list[DataPlane] = []

    def start(**kwargs: object) -> DataPlane:
        kwargs.setdefault("file_system_poll_wait_seconds", 0)
        kwargs.setdefault("max_num_load_retries", 0)
        dp = DataPlane(ServerOptions(**kwargs))
        dp.start()
        started.append(dp)
        return dp

    yield start
    for dp in started:
        dp.stop()


@pytest.fixture
def capture_log() -> Iterator[Callable[[str, int, float], LogRecords]]:
    attached: list[tuple[logging.Logger, LogRecords, int]] = []

    def capture(logger_name: str, level: int, wait_s: float) -> LogRecords:
        logger = logging.getLogger(logger_name)
        handler = LogRecords(wait_s)
        attached.append((logger, handler, logger.level))
        logger.setLevel(level)
        logger.addHandler(handler)
        return handler

    yield capture
    for logger, handler, old_level in reversed(attached):
        logger.removeHandler(handler)
        logger.setLevel(old_level)
