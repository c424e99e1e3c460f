"""The bundled example models: interface, behaviour when run, determinism, the CLI."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from tfsuite.errors import UsageError
from tfsuite.export import examples as examples_module
from tfsuite.export.examples import (
    CLASSIFIER_NAME,
    DETECTOR_NAME,
    DETECTOR_OUTPUTS,
    ClassifierFiles,
    build_classifier,
    build_detector,
    classifier_files,
    examples,
    write_examples,
)

DETECTION_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
assert DETECTOR_OUTPUTS == DETECTION_OUTPUTS  # the contract, spelled out once more on purpose


def _graph_def(path: Path) -> tf.compat.v1.GraphDef:
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(path.read_bytes())
    return graph_def


def _frozen_callable(
    path: Path, inputs: Sequence[str], outputs: Sequence[str]
) -> Callable[..., list[tf.Tensor]]:
    graph_def = _graph_def(path)
    wrapped = tf.compat.v1.wrap_function(
        lambda: tf.compat.v1.import_graph_def(graph_def, name=""), []
    )
    graph = wrapped.graph
    return wrapped.prune(
        [graph.get_tensor_by_name(f"{name}:0") for name in inputs],
        [graph.get_tensor_by_name(f"{name}:0") for name in outputs],
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tensor_shape(node: tf.compat.v1.NodeDef) -> list[int]:
    return [dim.size for dim in node.attr["shape"].shape.dim]


def _const_sizes(graph_def: tf.compat.v1.GraphDef) -> list[int]:
    return [
        int(np.prod([dim.size for dim in node.attr["value"].tensor.tensor_shape.dim]))
        for node in graph_def.node
        if node.op == "Const"
    ]


@pytest.fixture(scope="module")
def detector(detector_pb: Path) -> Callable[..., list[tf.Tensor]]:
    return _frozen_callable(detector_pb, ["image_tensor"], DETECTION_OUTPUTS)


@pytest.fixture(scope="module")
def test_images() -> np.ndarray:
    """Two 240x320 images (not the detector's internal 192x192): noise and smooth stripes."""
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:240, 0:320]
    stripes = np.stack(
        [(np.sin(xx / (9 + 6 * k) + yy / 25) + 1) * 127.5 for k in range(3)], axis=-1
    ).astype(np.uint8)
    return np.stack([noise, stripes])


# --- detector: the graph itself ------------------------------------------------------------


def test_detector_graph_has_od_api_interface(detector_pb: Path) -> None:
    graph_def = _graph_def(detector_pb)
    nodes = {node.name: node for node in graph_def.node}
    placeholders = [node for node in graph_def.node if node.op == "Placeholder"]
    assert [node.name for node in placeholders] == ["image_tensor"]
    image = placeholders[0]
    assert tf.dtypes.as_dtype(image.attr["dtype"].type) == tf.uint8
    assert _tensor_shape(image) == [-1, -1, -1, 3]
    for name in DETECTION_OUTPUTS:
        assert name in nodes, f"missing output node {name}"
    # A frozen graph: no variables left, no function library to resolve.
    ops = Counter(node.op for node in graph_def.node)
    assert not {"VarHandleOp", "ReadVariableOp", "VariableV2"} & set(ops)
    assert len(graph_def.library.function) == 0
    assert detector_pb.name == f"{DETECTOR_NAME}.pb"


def test_detector_graph_has_real_nms_bn_and_quantizable_weights(detector_pb: Path) -> None:
    graph_def = _graph_def(detector_pb)
    ops = Counter(node.op for node in graph_def.node)
    assert any(op.startswith(("NonMaxSuppression", "CombinedNonMaxSuppression")) for op in ops)
    # Separate batch norms and depthwise convs: the exporter's transforms have work to do.
    assert ops["FusedBatchNorm"] >= 10
    assert ops["DepthwiseConv2dNative"] >= 5
    assert ops["ResizeBilinear"] == 1
    sizes = _const_sizes(graph_def)
    assert sum(size >= 1024 for size in sizes) >= 10
    assert 200_000 < detector_pb.stat().st_size < 8_000_000


# --- detector: running it -------------------------------------------------------------------


def test_detector_outputs_on_a_batch_of_two(detector, test_images: np.ndarray) -> None:
    boxes, scores, classes, num = (t.numpy() for t in detector(tf.constant(test_images)))
    assert boxes.shape == (2, 100, 4) and boxes.dtype == np.float32
    assert scores.shape == (2, 100) and scores.dtype == np.float32
    assert classes.shape == (2, 100) and classes.dtype == np.float32
    assert num.shape == (2,) and num.dtype == np.float32

    assert np.all((boxes >= 0.0) & (boxes <= 1.0))
    assert np.all(boxes[..., 0] <= boxes[..., 2]) and np.all(boxes[..., 1] <= boxes[..., 3])
    assert np.all(np.diff(scores, axis=1) <= 0), "scores must be sorted, highest first"
    for i in range(2):
        n = int(num[i])
        assert n == int(np.count_nonzero(scores[i] > 0))
        assert np.all(classes[i, :n] >= 1) and np.all(classes[i, :n] <= 90)
        assert np.all(classes[i, n:] == 0) and np.all(scores[i, n:] == 0)
        assert np.all(boxes[i, n:] == 0)


def test_detector_outputs_are_meaningful_for_agreement_checks(
    detector, test_images: np.ndarray
) -> None:
    boxes, scores, classes, num = (t.numpy() for t in detector(tf.constant(test_images)))
    for i in range(2):
        n = int(num[i])
        assert n >= 5, "enough detections to match between variants"
        valid = scores[i, :n]
        assert valid.max() > 0.5 and valid.max() - valid.min() > 0.2, "scores spread out"
        assert len(np.unique(classes[i, :n])) >= 2
        areas = (boxes[i, :n, 2] - boxes[i, :n, 0]) * (boxes[i, :n, 3] - boxes[i, :n, 1])
        assert np.all(areas > 0) and areas.std() > 1e-3, "boxes of varied size"
    # The detections depend on the picture, not just on the weights.
    assert int(num[0]) != int(num[1]) or not np.allclose(boxes[0], boxes[1])


def test_detector_accepts_any_image_size_and_is_repeatable(detector) -> None:
    rng = np.random.default_rng(3)
    small = rng.integers(0, 256, (1, 97, 131, 3), dtype=np.uint8)
    first = [t.numpy() for t in detector(tf.constant(small))]
    second = [t.numpy() for t in detector(tf.constant(small))]
    assert first[0].shape == (1, 100, 4)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


# --- classifier -----------------------------------------------------------------------------


def test_classifier_frozen_graph_interface_and_softmax(classifier_pb: Path) -> None:
    graph_def = _graph_def(classifier_pb)
    placeholders = [node for node in graph_def.node if node.op == "Placeholder"]
    assert [node.name for node in placeholders] == ["input"]
    assert tf.dtypes.as_dtype(placeholders[0].attr["dtype"].type) == tf.float32
    assert _tensor_shape(placeholders[0]) == [-1, 224, 224, 3]
    output = next(node for node in graph_def.node if node.name == "probabilities")
    assert output.op == "Softmax"
    ops = Counter(node.op for node in graph_def.node)
    assert ops["FusedBatchNorm"] >= 30 and ops["DepthwiseConv2dNative"] == 17

    run = _frozen_callable(classifier_pb, ["input"], ["probabilities"])
    images = np.random.default_rng(1).uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32)
    (probabilities,) = (t.numpy() for t in run(tf.constant(images)))
    assert probabilities.shape == (2, 1000) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(probabilities >= 0)
    assert probabilities.max() > 10 / 1000, "a clear top-1, not a uniform distribution"


def test_classifier_saved_model_signature_matches_frozen_graph(
    classifier_saved_model: Path, classifier_pb: Path
) -> None:
    loaded = tf.saved_model.load(str(classifier_saved_model))
    signature = loaded.signatures["serving_default"]
    _, kwargs = signature.structured_input_signature
    assert set(kwargs) == {"input"}
    assert kwargs["input"].dtype == tf.float32
    assert kwargs["input"].shape.as_list() == [None, 224, 224, 3]
    assert set(signature.structured_outputs) == {"probabilities"}
    assert signature.structured_outputs["probabilities"].shape.as_list() == [None, 1000]

    images = np.random.default_rng(2).uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32)
    from_saved = signature(input=tf.constant(images))["probabilities"].numpy()
    run = _frozen_callable(classifier_pb, ["input"], ["probabilities"])
    (from_frozen,) = (t.numpy() for t in run(tf.constant(images)))
    np.testing.assert_allclose(from_saved, from_frozen, rtol=1e-4, atol=1e-6)


# --- determinism, idempotence, atomic writes ------------------------------------------------


def test_detector_build_is_deterministic_and_idempotent(detector_pb: Path, tmp_path: Path) -> None:
    first = build_detector(tmp_path)
    digest = _sha256(first)
    assert digest == _sha256(detector_pb), "a rebuild must write the same bytes"
    again = build_detector(tmp_path)
    assert again == first and _sha256(again) == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name], "no temp files left"


def test_classifier_build_is_deterministic(
    classifier_pb: Path, classifier_saved_model: Path, tmp_path: Path
) -> None:
    files = build_classifier(tmp_path)
    assert files == classifier_files(tmp_path)
    assert _sha256(files.frozen_graph) == _sha256(classifier_pb)
    weights = sorted((files.saved_model / "variables").glob("variables.data-*"))
    reference = sorted((classifier_saved_model / "variables").glob("variables.data-*"))
    assert weights and [_sha256(p) for p in weights] == [_sha256(p) for p in reference]
    assert sorted(p.name for p in tmp_path.iterdir()) == [CLASSIFIER_NAME, f"{CLASSIFIER_NAME}.pb"]


def test_examples_dir_layout(examples_dir: Path) -> None:
    assert sorted(p.name for p in examples_dir.iterdir()) == [
        CLASSIFIER_NAME,
        f"{CLASSIFIER_NAME}.pb",
        f"{DETECTOR_NAME}.pb",
    ]
    saved_model = examples_dir / CLASSIFIER_NAME
    assert (saved_model / "saved_model.pb").is_file()
    assert (saved_model / "variables" / "variables.index").is_file()


def test_write_examples_returns_the_main_files(tmp_path: Path) -> None:
    written = write_examples(tmp_path, only=["detector"])
    assert written == {DETECTOR_NAME: tmp_path / f"{DETECTOR_NAME}.pb"}
    assert written[DETECTOR_NAME].stat().st_mode & 0o444 == 0o444, "readable by a server container"


def test_public_names_exist() -> None:
    from tfsuite.export import (
        examples_classifier,
        examples_detector,
        examples_graph,
        examples_mobilenet,
    )

    modules = (examples_module, examples_classifier, examples_detector, examples_graph)
    for module in (*modules, examples_mobilenet):
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert not missing, f"{module.__name__}.__all__ lists missing names {missing}"


def test_write_examples_rejects_a_file_as_out_dir(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "models.txt"
    not_a_dir.write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        write_examples(not_a_dir)
    with pytest.raises(UsageError, match="unknown example model 'segmenter'"):
        write_examples(tmp_path / "out", only=["segmenter"])
    assert not (tmp_path / "out").exists()


# --- CLI --------------------------------------------------------------------------------------


def test_cli_writes_the_detector_and_lists_it(tmp_path: Path) -> None:
    out = tmp_path / "models"
    # A wide terminal so that rich does not fold the table cells.
    result = CliRunner().invoke(
        examples, ["--out", str(out), "--only", "detector"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert (out / f"{DETECTOR_NAME}.pb").is_file()
    assert not (out / f"{CLASSIFIER_NAME}.pb").exists()
    row = next(line for line in result.output.splitlines() if f"{DETECTOR_NAME}.pb" in line)
    assert "frozen_graph" in row and "image_tensor uint8 [?,?,?,3]" in row and "MiB" in row


def test_cli_out_is_a_file_is_a_one_line_usage_error(tmp_path: Path) -> None:
    from tfsuite.cli import cli

    not_a_dir = tmp_path / "file.pb"
    not_a_dir.write_bytes(b"")
    result = CliRunner().invoke(cli, ["examples", "--out", str(not_a_dir)])
    assert isinstance(result.exception, UsageError)
    message = str(result.exception)
    assert "\n" not in message and "is a file" in message
    assert not_a_dir.read_bytes() == b""

    bad_choice = CliRunner().invoke(examples, ["--out", str(tmp_path), "--only", "segmenter"])
    assert bad_choice.exit_code == 2 and "segmenter" in bad_choice.output


def test_classifier_files_type() -> None:
    files = classifier_files(Path("/models"))
    assert isinstance(files, ClassifierFiles)
    assert files.frozen_graph == Path("/models/mobilenet_v2.pb")
    assert files.saved_model == Path("/models/mobilenet_v2")
