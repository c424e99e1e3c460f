"""Acceptance (issue 2): the bundled example models through ``export_variants``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfsuite.export.api import export_variants
from tfsuite.export.manifest import VariantsManifest

pytestmark = pytest.mark.slow


def _serving_fn(version_dir: Path):
    return tf.saved_model.load(str(version_dir), tags=["serve"]).signatures["serving_default"]


def test_detector_versions_1_2_serve_image_tensor_uint8(detector_base: Path) -> None:
    manifest = VariantsManifest.load(detector_base)
    assert manifest.kind == "detector"
    assert [(v.version, v.variant, v.status) for v in manifest.variants] == [
        (1, "original", "ok"),
        (2, "weight_quant", "ok"),
        (3, "trt_fp16", "skipped"),
        (4, "trt_int8", "skipped"),
    ]
    image = np.zeros((1, 96, 128, 3), np.uint8)
    for version in (1, 2):
        fn = _serving_fn(detector_base / str(version))
        ((name, spec),) = fn.structured_input_signature[1].items()
        assert name == "image_tensor" and spec.dtype == tf.uint8
        assert spec.shape.as_list() == [None, None, None, 3]  # dynamic dims stay dynamic
        out = fn(image_tensor=tf.constant(image))
        assert set(out) == {
            "detection_boxes",
            "detection_scores",
            "detection_classes",
            "num_detections",
        }
        assert out["detection_boxes"].shape == (1, 100, 4)
        assert out["num_detections"].shape == (1,)
    for version in (3, 4):
        record = manifest.by_version(version)
        assert (
            record is not None
            and "TensorRT" in record.reason
            and "--profile export run --rm exporter" in record.reason
        )
        assert not (detector_base / str(version)).exists()


@pytest.mark.parametrize("base_fixture", ["detector_base", "classifier_base"])
def test_weight_quant_is_a_quarter_and_validated(
    base_fixture: str, request: pytest.FixtureRequest
) -> None:
    base: Path = request.getfixturevalue(base_fixture)
    manifest = VariantsManifest.load(base)
    original, quant = manifest.by_variant("original"), manifest.by_variant("weight_quant")
    assert original and quant and original.size_bytes and quant.size_bytes
    ratio = quant.size_bytes / original.size_bytes
    assert ratio <= 0.35, ratio
    assert quant.validation is not None and quant.validation.passed
    assert quant.node_count.get("Dequantize", 0) > 0
    assert quant.source_sha256 == manifest.source_sha256 and quant.tf_version == tf.__version__
    # what was measured is what is on disk
    assert quant.size_bytes == sum(p.stat().st_size for p in (base / "2").rglob("*") if p.is_file())


def test_classifier_signature_and_top1(classifier_base: Path) -> None:
    manifest = VariantsManifest.load(classifier_base)
    assert manifest.kind == "classifier"
    assert [i.name for i in manifest.inputs] == ["input"] and [
        o.name for o in manifest.outputs
    ] == ["probabilities"]
    assert manifest.outputs[0].shape == [None, 1000]
    quant = manifest.by_variant("weight_quant")
    assert quant and quant.validation and quant.validation.top1_agreement is not None
    assert quant.validation.top1_agreement >= quant.validation.tolerance["top1_agreement"]
    fn = _serving_fn(classifier_base / "2")
    probs = fn(input=tf.zeros([2, 224, 224, 3]))["probabilities"].numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-3)


def test_example_classifier_saved_model_source(
    classifier_saved_model: Path, tmp_path: Path
) -> None:
    manifest = export_variants(
        classifier_saved_model, tmp_path / "m", variants="original,weight_quant", progress=False
    )
    assert manifest.source_format == "saved_model" and manifest.kind == "classifier"
    assert [(i.name, i.dtype, i.shape) for i in manifest.inputs] == [
        ("input", "float32", [None, 224, 224, 3])
    ]
    assert [o.name for o in manifest.outputs] == ["probabilities"]
    original, quant = manifest.variants
    assert original.status == quant.status == "ok"
    assert quant.size_bytes / original.size_bytes <= 0.35
