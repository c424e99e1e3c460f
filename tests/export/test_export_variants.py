"""Every CPU variant of the tiny detector, plus SavedModel and Keras sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfsuite.export.api import export_variants
from tfsuite.export.manifest import VariantsManifest
from tfsuite.export.validate import fixed_inputs, run_saved_model


def test_all_cpu_variants_published_and_validated(
    tiny_detector_export: tuple[Path, VariantsManifest],
) -> None:
    base, manifest = tiny_detector_export
    assert VariantsManifest.load(base) == manifest
    by_name = {v.variant: v for v in manifest.variants}
    assert {n: v.version for n, v in by_name.items()} == {
        "original": 1,
        "weight_quant": 2,
        "trt_fp16": 3,
        "trt_int8": 4,
        "optimized": 5,
        "fp16_weights": 6,
    }
    for name in ("original", "weight_quant", "optimized", "fp16_weights"):
        rec = by_name[name]
        assert rec.status == "ok", (name, rec.reason)
        assert (
            rec.validation
            and rec.validation.passed
            and rec.validation.detection_agreement is not None
        )
        assert (base / str(rec.version) / "saved_model.pb").is_file()
        assert rec.conversion_seconds is not None and rec.size_bytes
    assert by_name["original"].validation.max_abs_error == 0.0
    assert by_name["fp16_weights"].node_count.get("Cast", 0) > by_name["original"].node_count.get(
        "Cast", 0
    )
    assert by_name["weight_quant"].options["engine"] in {"graph_transforms", "rewrite"}
    # constant folding left fewer Consts, and the graph is no bigger
    assert by_name["optimized"].node_count["Const"] < by_name["original"].node_count["Const"]
    assert by_name["optimized"].size_bytes <= by_name["original"].size_bytes
    # only ok variants have a directory; no temp dirs are left behind
    assert sorted(p.name for p in base.iterdir()) == ["1", "2", "5", "6", "variants.json"]


def test_published_variant_agrees_when_reloaded(
    tiny_detector_export: tuple[Path, VariantsManifest],
) -> None:
    base, manifest = tiny_detector_export
    feeds = fixed_inputs([_endpoint(manifest)], batch=2)
    ref = run_saved_model(base / "1", feeds)
    fp16 = run_saved_model(base / "6", feeds)
    np.testing.assert_allclose(
        fp16["detection_scores"][:, :5], ref["detection_scores"][:, :5], atol=0.02
    )


def _endpoint(manifest: VariantsManifest):
    from tfsuite.export.graphs import Endpoint

    spec = manifest.inputs[0]
    return Endpoint(key=spec.name, tensor=f"{spec.name}:0", dtype=spec.dtype, shape=spec.shape)


def test_saved_model_source(tiny_saved_model: Path, tmp_path: Path) -> None:
    manifest = export_variants(
        tiny_saved_model, tmp_path / "m", variants="original,weight_quant", progress=False
    )
    assert manifest.source_format == "saved_model" and manifest.kind == "classifier"
    assert [(i.name, i.shape) for i in manifest.inputs] == [("pixels", [None, 24, 24, 3])]
    assert [o.name for o in manifest.outputs] == ["scores"]
    assert all(v.status == "ok" for v in manifest.variants), manifest.variants
    fn = tf.saved_model.load(str(tmp_path / "m" / "1"), tags=["serve"]).signatures[
        "serving_default"
    ]
    out = fn(pixels=tf.ones([3, 24, 24, 3]))["scores"]
    assert out.shape == (3, 10)


def test_keras_source(tiny_keras: Path, tmp_path: Path) -> None:
    manifest = export_variants(
        tiny_keras, tmp_path / "k", variants="original,fp16_weights", progress=False
    )
    assert manifest.source_format == "keras" and manifest.kind == "classifier"
    assert manifest.inputs[0].shape == [None, 16, 16, 3]
    assert [v.status for v in manifest.variants] == ["ok", "ok"]


def test_input_shape_pinning_keeps_other_dims_dynamic(
    tiny_detector_pb: Path, tmp_path: Path
) -> None:
    manifest = export_variants(
        tiny_detector_pb,
        tmp_path / "pinned",
        variants="original",
        input_shapes=["image_tensor:?x64x64x3"],
        progress=False,
    )
    assert manifest.inputs[0].shape == [None, 64, 64, 3]
    fn = tf.saved_model.load(str(tmp_path / "pinned" / "1"), tags=["serve"]).signatures[
        "serving_default"
    ]
    assert fn.structured_input_signature[1]["image_tensor"].shape.as_list() == [None, 64, 64, 3]


@pytest.mark.parametrize("variant", ["optimized", "weight_quant"])
def test_builtin_fallbacks_without_graph_transform_tool(
    variant: str, tiny_classifier_pb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the native GTT entry point is missing, the suite's own rewrites take over."""
    from tfsuite.export import transforms

    monkeypatch.setattr(transforms, "gtt_available", lambda: False)
    manifest = export_variants(
        tiny_classifier_pb, tmp_path / "fb", variants=f"original,{variant}", progress=False
    )
    rec = manifest.by_variant(variant)
    assert rec and rec.status == "ok", rec
    assert rec.options["engine"] in {"rewrite", "fallback"}
    if variant == "weight_quant":
        assert (
            rec.node_count.get("Dequantize", 0) == 1
        )  # conv2 (18432); conv1 (864) and fc (640) are under 1024
        assert rec.size_bytes < 0.5 * manifest.by_variant("original").size_bytes


def test_tf1_saved_model_source_reexports(
    tiny_detector_export: tuple[Path, VariantsManifest], tmp_path: Path
) -> None:
    """A published version (TF1-style SavedModel, no variables) is itself a valid source."""
    base, _ = tiny_detector_export
    manifest = export_variants(
        base / "1", tmp_path / "again", variants="original,weight_quant", progress=False
    )
    assert manifest.source_format == "saved_model" and manifest.kind == "detector"
    assert [i.name for i in manifest.inputs] == ["image_tensor"] and manifest.inputs[
        0
    ].dtype == "uint8"
    assert sorted(o.name for o in manifest.outputs) == [
        "detection_boxes",
        "detection_classes",
        "detection_scores",
        "num_detections",
    ]
    assert [v.status for v in manifest.variants] == ["ok", "ok"]
