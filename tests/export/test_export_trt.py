"""TF-TRT variants: the real skip here, and the code past the TensorRT boundary with a mock."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import tensorflow as tf

from tfsuite.export.api import export_variants
from tfsuite.export.trt import TrtOptions, converter_kwargs


def test_trt_variants_are_skipped_with_the_exact_reason(
    tiny_classifier_pb: Path, tmp_path: Path
) -> None:
    manifest = export_variants(
        tiny_classifier_pb,
        tmp_path / "m",
        variants="original,trt_fp32,trt_fp16,trt_int8",
        progress=False,
    )
    for name in ("trt_fp32", "trt_fp16", "trt_int8"):
        rec = manifest.by_variant(name)
        assert rec.status == "skipped"
        # the real error from this TF build, and what to run instead
        assert "Tensorflow has not been built with TensorRT support" in rec.reason
        assert (
            "TF <= 2.17 + TensorRT" in rec.reason
            and "compose/docker-compose.yml --profile export run --rm exporter" in rec.reason
        )
        assert not (tmp_path / "m" / str(rec.version)).exists()
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1", "variants.json"]


def test_converter_arguments() -> None:
    options = TrtOptions(max_workspace_bytes=1 << 28, minimum_segment_size=5, max_cached_engines=4)
    kwargs = converter_kwargs("INT8", Path("/models/src"), options)
    assert kwargs == {
        "input_saved_model_dir": "/models/src",
        "input_saved_model_tags": ["serve"],
        "input_saved_model_signature_key": "serving_default",
        "precision_mode": "INT8",
        "max_workspace_size_bytes": 1 << 28,
        "minimum_segment_size": 5,
        "maximum_cached_engines": 4,
        "use_calibration": True,
        "allow_build_at_runtime": True,
    }
    assert converter_kwargs("FP16", Path("x"), options)["use_calibration"] is False
    # the keyword names exist on this TF's converter (same names as TF 2.17's)
    import inspect

    params = inspect.signature(tf.experimental.tensorrt.Converter.__init__).parameters
    assert set(kwargs) <= set(params)


class MockTrtConverter:
    """Stands in for tf.experimental.tensorrt.Converter, which cannot exist without TensorRT.

    convert/build consume the input functions the way TF-TRT does and record what they saw;
    save() writes the fp32 input SavedModel unchanged, so validation and publishing run for real.
    """

    instances: ClassVar[list[MockTrtConverter]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.calibration: list[tuple[np.ndarray, ...]] = []
        self.built: list[tuple[int, ...]] = []
        MockTrtConverter.instances.append(self)

    def convert(self, calibration_input_fn=None) -> None:
        if calibration_input_fn is not None:
            self.calibration = [tuple(t.numpy() for t in batch) for batch in calibration_input_fn()]

    def build(self, input_fn) -> None:
        self.built = [tuple(t.shape) for batch in input_fn() for t in batch]

    def save(self, output_saved_model_dir: str) -> None:
        loaded = tf.saved_model.load(self.kwargs["input_saved_model_dir"], tags=["serve"])
        tf.saved_model.save(loaded, output_saved_model_dir, signatures=loaded.signatures)


def test_trt_int8_mock_converter_calibrates_from_images_and_prebuilds_batches(
    tiny_classifier_pb: Path, tmp_path: Path
) -> None:
    import cv2

    calib = tmp_path / "calib"
    calib.mkdir()
    for i in range(3):
        cv2.imwrite(str(calib / f"img{i}.png"), np.full((40, 50, 3), 60 + i, np.uint8))
    MockTrtConverter.instances.clear()
    options = TrtOptions(
        minimum_segment_size=7,
        max_cached_engines=2,
        calibration_batches=2,
        converter_factory=MockTrtConverter,
    )
    manifest = export_variants(
        tiny_classifier_pb,
        tmp_path / "m",
        variants="original,trt_int8",
        batch_sizes=(1, 4),
        calibration_data=calib,
        trt_options=options,
        progress=False,
    )
    (converter,) = MockTrtConverter.instances
    assert (
        converter.kwargs["precision_mode"] == "INT8"
        and converter.kwargs["minimum_segment_size"] == 7
    )
    assert converter.kwargs["maximum_cached_engines"] == 2
    assert converter.built == [(1, 32, 32, 3), (4, 32, 32, 3)]  # one engine per --batch-sizes entry
    assert len(converter.calibration) == 2
    pixels = converter.calibration[0][0]
    assert pixels.shape == (4, 32, 32, 3)
    # calibration read the images (resized, scaled to [0,1] for a float input), not synthetic data
    assert set(np.round(np.unique(pixels) * 255).astype(int)) <= {60, 61, 62}
    rec = manifest.by_variant("trt_int8")
    assert rec.status == "ok" and rec.validation.passed
    assert rec.options["batch_sizes"] == [1, 4] and rec.options["calibration"] == str(calib)
    assert (tmp_path / "m" / str(rec.version) / "saved_model.pb").exists()


def test_overwrite_here_keeps_a_trt_build_made_elsewhere_mock(
    tiny_classifier_pb: Path, tmp_path: Path
) -> None:
    """A TF-TRT version built on a GPU box (here: with the mock) survives --overwrite on a CPU box."""
    base = tmp_path / "m"
    options = TrtOptions(converter_factory=MockTrtConverter)
    export_variants(
        tiny_classifier_pb, base, variants="original,trt_fp16", trt_options=options, progress=False
    )
    manifest = export_variants(
        tiny_classifier_pb, base, variants="original,trt_fp16", overwrite=True, progress=False
    )
    rec = manifest.by_variant("trt_fp16")
    assert rec.status == "ok" and (base / "3" / "saved_model.pb").exists()
