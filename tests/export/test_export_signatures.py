"""Signature detection and the override syntax."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfsuite.export.errors import ExportUsageError
from tfsuite.export.graphs import Endpoint
from tfsuite.export.loading import load_source, read_graph_def
from tfsuite.export.signatures import detect_kind, graph_sinks, parse_input_specs, parse_shape


def test_parse_shape_and_specs() -> None:
    assert parse_shape("1x224x224x3") == [1, 224, 224, 3]
    assert parse_shape("?x-1xNonex3") == [None, None, None, 3]
    assert parse_shape("[-1,300,300,3]") == [None, 300, 300, 3]
    with pytest.raises(ExportUsageError):
        parse_shape("1xbig")
    assert parse_input_specs(["image_tensor:1x300x300x3", "a,b", "x:0"]) == {
        "image_tensor": [1, 300, 300, 3],
        "a": None,
        "b": None,
        "x:0": None,
    }


def test_detect_kind() -> None:
    probs = Endpoint("probabilities", "p:0", "float32", [None, 1000])
    assert detect_kind([probs]) == "classifier"
    assert detect_kind([Endpoint("y", "y:0", "float32", [None, 1])]) == "generic"
    assert detect_kind([Endpoint("y", "y:0", "float32", [None, 4, 4])]) == "generic"
    assert detect_kind([probs, Endpoint("z", "z:0", "float32", [None, 3])]) == "generic"
    assert (
        detect_kind([Endpoint("detection_boxes", "b:0", "float32", [None, 100, 4])]) == "detector"
    )


def test_detector_auto_detection(tiny_detector_pb: Path) -> None:
    model = load_source(tiny_detector_pb)
    assert [e.key for e in model.inputs] == ["image_tensor"]
    assert model.inputs[0].dtype == "uint8" and model.inputs[0].shape == [None, None, None, 3]
    assert [e.key for e in model.outputs] == [
        "detection_boxes",
        "detection_scores",
        "detection_classes",
        "num_detections",
    ]
    assert all(":" not in e.key for e in [*model.inputs, *model.outputs])
    assert model.kind == "detector"
    # the four outputs are sinks of the graph as well (detection by name wins over sink order)
    assert set(graph_sinks(read_graph_def(tiny_detector_pb))) >= {e.key for e in model.outputs}


def test_classifier_auto_detection_and_overrides(tiny_classifier_pb: Path) -> None:
    model = load_source(tiny_classifier_pb)
    assert [(e.key, e.tensor) for e in model.outputs] == [("probabilities", "probabilities:0")]
    assert model.kind == "classifier"
    pinned = load_source(tiny_classifier_pb, inputs={"input": [8, 32, 32, 3]}, outputs=["MatMul"])
    assert pinned.inputs[0].shape == [8, 32, 32, 3]
    assert [e.key for e in pinned.outputs] == ["MatMul"] and pinned.kind == "classifier"
    assert any("outputs (given): MatMul" in n for n in pinned.notes)


def test_saved_model_output_selection(tiny_saved_model: Path) -> None:
    model = load_source(tiny_saved_model, input_shapes={"pixels": [2, 24, 24, 3]})
    assert model.source_format == "saved_model"
    assert model.inputs[0].shape == [2, 24, 24, 3]
    with pytest.raises(ExportUsageError, match="candidates: scores"):
        load_source(tiny_saved_model, outputs=["logits"])
    with pytest.raises(ExportUsageError, match="no signature 'predict'.*serving_default"):
        load_source(tiny_saved_model, signature="predict")


def test_colliding_output_names_get_full_clean_keys(tmp_path: Path) -> None:
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="scope/x")
        tf.identity(x * 2.0, name="a/out")
        tf.identity(x * 3.0, name="b/out")
    path = tmp_path / "g.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString())
    model = load_source(path)
    assert [e.key for e in model.inputs] == ["x"]
    assert sorted(e.key for e in model.outputs) == ["a_out", "b_out"]
    assert model.kind == "generic"
