"""Validation catches broken variants; the metrics behave as documented."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfsuite.export.api import export_variants
from tfsuite.export.saving import write_saved_model
from tfsuite.export.validate import (
    DEFAULT_TOLERANCES,
    compare_outputs,
    detection_agreement,
    fixed_inputs,
)
from tfsuite.export.variants import VARIANTS, BuildContext, BuildResult, VariantSpec


def _corrupt_weights(ctx: BuildContext, out: Path) -> BuildResult:
    """A plausible-looking but wrong variant: every large weight tensor shuffled."""
    graph_def = tf.compat.v1.GraphDef()
    graph_def.CopyFrom(ctx.model.graph_def)
    rng = np.random.default_rng(7)
    for node in graph_def.node:
        if node.op == "Const" and node.attr["dtype"].type == tf.float32.as_datatype_enum:
            value = tf.make_ndarray(node.attr["value"].tensor)
            if value.size >= 256:
                flat = value.ravel().copy()
                rng.shuffle(flat)
                node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(flat.reshape(value.shape)))
    write_saved_model(graph_def, ctx.model.inputs, ctx.model.outputs, out)
    return BuildResult(graph_def=graph_def)


REGISTRY = dict(VARIANTS) | {
    "corrupted": VariantSpec("corrupted", "fp32", _corrupt_weights, "deliberately broken")
}


@pytest.mark.parametrize("model", ["tiny_classifier_pb", "tiny_detector_pb"])
def test_corrupted_variant_fails_and_is_not_published(
    model: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    source: Path = request.getfixturevalue(model)
    base = tmp_path / "m"
    manifest = export_variants(
        source, base, variants="original,corrupted", registry=REGISTRY, progress=False
    )
    bad = manifest.by_variant("corrupted")
    assert bad is not None and bad.status == "failed"
    assert bad.reason.startswith("validation failed:")
    assert bad.validation is not None and not bad.validation.passed
    assert not (base / str(bad.version)).exists()
    assert manifest.by_variant("original").status == "ok"
    assert manifest.version_labels() == {"original": 1}


def test_tolerance_override_can_fail_a_good_variant(
    tiny_classifier_pb: Path, tmp_path: Path
) -> None:
    manifest = export_variants(
        tiny_classifier_pb,
        tmp_path / "m",
        variants="original,weight_quant",
        progress=False,
        tolerances={"weight_quant": {"max_rel_error": 1e-9}},
    )
    quant = manifest.by_variant("weight_quant")
    assert quant.status == "failed" and "max relative error" in quant.reason
    assert quant.validation.tolerance["max_rel_error"] == 1e-9
    assert (
        quant.validation.tolerance["top1_agreement"]
        == DEFAULT_TOLERANCES["weight_quant"]["top1_agreement"]
    )


def test_classifier_metrics() -> None:
    ref = {"p": np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]], np.float32)}
    same = compare_outputs(
        ref, {"p": ref["p"] + 0.01}, "classifier", {"max_rel_error": 0.05, "top1_agreement": 1.0}
    )
    assert same.passed and same.top1_agreement == 1.0
    assert same.max_abs_error == pytest.approx(0.01, abs=1e-6)
    assert same.max_rel_error == pytest.approx(0.01 / 0.8, rel=1e-3)
    flipped = compare_outputs(
        ref, {"p": ref["p"][:, ::-1].copy()}, "classifier", {"top1_agreement": 0.9}
    )
    assert not flipped.passed and flipped.top1_agreement == 0.5 and "top-1" in flipped.detail
    nan = compare_outputs(
        ref, {"p": np.full_like(ref["p"], np.nan)}, "generic", {"max_rel_error": 1.0}
    )
    assert not nan.passed
    shape = compare_outputs(ref, {"p": ref["p"][:1]}, "generic", {})
    assert not shape.passed and "shape" in shape.detail


def _dets(
    boxes: list[list[float]], classes: list[float], scores: list[float]
) -> dict[str, np.ndarray]:
    pad = 5 - len(boxes)
    return {
        "detection_boxes": np.array([boxes + [[0, 0, 0, 0]] * pad], np.float32),
        "detection_classes": np.array([classes + [0] * pad], np.float32),
        "detection_scores": np.array([scores + [0] * pad], np.float32),
        "num_detections": np.array([len(boxes)], np.float32),
    }


def test_detection_agreement_iou_and_class() -> None:
    ref = _dets([[0.1, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9]], [1, 2], [0.9, 0.8])
    # reordered and slightly moved: still agreement 1.0
    moved = _dets([[0.61, 0.6, 0.9, 0.9], [0.1, 0.12, 0.5, 0.5]], [2, 1], [0.79, 0.88])
    agreement, worst = detection_agreement(ref, moved)
    assert agreement == 1.0 and worst == pytest.approx(0.02, abs=1e-6)
    # one box changes class, the other drifts below IoU 0.5
    wrong = _dets([[0.1, 0.1, 0.5, 0.5], [0.75, 0.75, 1.0, 1.0]], [3, 2], [0.9, 0.8])
    assert detection_agreement(wrong, ref)[0] == 0.0
    result = compare_outputs(ref, wrong, "detector", {"detection_agreement": 0.5})
    assert not result.passed and result.detection_agreement == 0.0


def test_fixed_inputs_are_deterministic_and_typed() -> None:
    from tfsuite.export.graphs import Endpoint

    endpoint = Endpoint("image_tensor", "image_tensor:0", "uint8", [None, None, None, 3])
    a, b = fixed_inputs([endpoint]), fixed_inputs([endpoint])
    assert a["image_tensor"].dtype == np.uint8 and a["image_tensor"].shape == (4, 128, 128, 3)
    np.testing.assert_array_equal(a["image_tensor"], b["image_tensor"])
    assert a["image_tensor"].std() > 10  # structured images, not a constant
    floats = fixed_inputs([Endpoint("x", "x:0", "float32", [None, 8])], batch=3)
    assert floats["x"].shape == (3, 8) and floats["x"].dtype == np.float32
