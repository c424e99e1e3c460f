"""Version numbering, atomic writes, idempotent re-runs and the no-overwrite rule."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import tensorflow as tf

from tfsuite.export.api import export_variants
from tfsuite.export.basepath import assign_versions, scan_base_path
from tfsuite.export.errors import ExportUsageError
from tfsuite.export.manifest import VariantRecord, VariantsManifest


def _manifest(*records: tuple[str, int]) -> VariantsManifest:
    return VariantsManifest(
        model_name="m",
        source="s",
        source_format="frozen_graph",
        source_sha256="x",
        tf_version="t",
        variants=[
            VariantRecord(version=v, variant=n, precision="fp32", status="ok") for n, v in records
        ],
    )


def test_assign_versions_card_numbers_then_following() -> None:
    assert assign_versions(["original", "weight_quant", "trt_fp16", "trt_int8"], None, set()) == {
        "original": 1,
        "weight_quant": 2,
        "trt_fp16": 3,
        "trt_int8": 4,
    }
    assert assign_versions(["optimized", "original"], None, set()) == {
        "optimized": 5,
        "original": 1,
    }
    # numbers once assigned never change, even for a non-default variant
    assert assign_versions(["original", "optimized"], _manifest(("optimized", 2)), {2}) == {
        "original": 1,
        "optimized": 2,
    }
    # a default number already taken by another variant -> numbers after every one in use
    assert assign_versions(["weight_quant", "fp16_weights"], _manifest(("optimized", 2)), {2}) == {
        "weight_quant": 5,
        "fp16_weights": 6,
    }


def test_rerun_same_source_is_up_to_date(tiny_classifier_pb: Path, tmp_path: Path) -> None:
    base = tmp_path / "m"
    first = export_variants(
        tiny_classifier_pb, base, variants="original,weight_quant", progress=False
    )
    mtime = (base / "2" / "saved_model.pb").stat().st_mtime_ns
    second = export_variants(
        tiny_classifier_pb, base, variants="original,weight_quant", progress=False
    )
    assert (base / "2" / "saved_model.pb").stat().st_mtime_ns == mtime
    assert second.variants == first.variants
    # adding a variant later keeps the existing numbers
    third = export_variants(
        tiny_classifier_pb, base, variants="fp16_weights,original", progress=False
    )
    assert {v.variant: v.version for v in third.variants} == {
        "original": 1,
        "weight_quant": 2,
        "fp16_weights": 5,
    }


def test_existing_version_needs_overwrite(tiny_classifier_pb: Path, tmp_path: Path) -> None:
    base = tmp_path / "m"
    (base / "1").mkdir(parents=True)
    (base / "1" / "marker").write_text("someone else's model")
    with pytest.raises(ExportUsageError, match="version 1 already exists.*--overwrite"):
        export_variants(tiny_classifier_pb, base, variants="original", progress=False)
    assert sorted(p.name for p in base.iterdir()) == ["1"]  # nothing written
    manifest = export_variants(
        tiny_classifier_pb, base, variants="original", overwrite=True, progress=False
    )
    assert manifest.by_variant("original").status == "ok"
    assert not (base / "1" / "marker").exists() and (base / "1" / "saved_model.pb").exists()
    assert [p.name for p in base.iterdir() if p.name.startswith(".")] == []


def test_different_source_needs_overwrite(
    tiny_classifier_pb: Path, tiny_detector_pb: Path, tmp_path: Path
) -> None:
    base = tmp_path / "m"
    export_variants(tiny_classifier_pb, base, variants="original", progress=False)
    before = VariantsManifest.load(base)
    with pytest.raises(ExportUsageError, match="different source.*--overwrite"):
        export_variants(tiny_detector_pb, base, variants="original", progress=False)
    assert VariantsManifest.load(base) == before


def test_non_numeric_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1").mkdir()
    (tmp_path / ".tfsuite-original-abc").mkdir()  # our own stale temp dirs are ignored
    (tmp_path / ".2.x1y2.tmp").mkdir()  # (tfsuite.atomic's, left by a killed run)
    assert list(scan_base_path(tmp_path)) == [1]
    (tmp_path / "latest").mkdir()
    with pytest.raises(ExportUsageError, match="non-numeric directory 'latest'"):
        scan_base_path(tmp_path)


def test_failed_build_leaves_no_temp_dir(tiny_classifier_pb: Path, tmp_path: Path) -> None:
    from tfsuite.export.variants import VARIANTS, BuildResult, VariantSpec

    def explode(ctx, out: Path) -> BuildResult:
        out.mkdir(parents=True)
        (out / "half-written").write_bytes(b"x")
        raise RuntimeError("disk full")

    registry = dict(VARIANTS) | {"broken": VariantSpec("broken", "fp32", explode, "always fails")}
    manifest = export_variants(
        tiny_classifier_pb,
        tmp_path / "m",
        variants="original,broken",
        registry=registry,
        progress=False,
    )
    rec = manifest.by_variant("broken")
    assert rec.status == "failed" and "disk full" in rec.reason
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1", "variants.json"]
    shutil.rmtree(tmp_path / "m")


def test_changed_outputs_with_overwrite_rebuild_and_update_the_record(
    tiny_classifier_pb: Path, tmp_path: Path
) -> None:
    base = tmp_path / "m"
    export_variants(tiny_classifier_pb, base, variants="original", progress=False)
    with pytest.raises(ExportUsageError, match="pass --overwrite to rebuild"):
        export_variants(
            tiny_classifier_pb, base, variants="original", outputs="Relu", progress=False
        )
    manifest = export_variants(
        tiny_classifier_pb,
        base,
        variants="original",
        outputs="Relu",
        overwrite=True,
        progress=False,
    )
    assert [o.name for o in manifest.outputs] == ["Relu"]
    assert VariantsManifest.load(base).outputs == manifest.outputs
    fn = tf.saved_model.load(str(base / "1"), tags=["serve"]).signatures["serving_default"]
    assert list(fn.structured_outputs) == ["Relu"]
    # and the new signature is now the up-to-date one
    again = export_variants(
        tiny_classifier_pb, base, variants="original", outputs="Relu", progress=False
    )
    assert again.variants == manifest.variants


def test_skipped_trt_is_not_retried_for_the_same_source_and_tf(
    tiny_classifier_pb: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = tmp_path / "m"
    first = export_variants(tiny_classifier_pb, base, variants="original,trt_fp16", progress=False)
    assert first.by_variant("trt_fp16").status == "skipped"
    with caplog.at_level(logging.INFO, logger="tfsuite.export.report"):
        second = export_variants(
            tiny_classifier_pb, base, variants="original,trt_fp16", progress=False
        )
    notes = [r.getMessage() for r in caplog.records]
    assert "version 3 (trt_fp16): up to date (skipped: TensorRT is not available" in " ".join(
        notes
    ), notes
    assert second.by_variant("trt_fp16") == first.by_variant(
        "trt_fp16"
    )  # same record, same time stamp
    retried = export_variants(
        tiny_classifier_pb, base, variants="trt_fp16", overwrite=True, progress=False
    )
    assert retried.by_variant("trt_fp16").created_at != first.by_variant("trt_fp16").created_at


def test_existing_leading_zero_dirs_are_their_versions(
    tiny_classifier_pb: Path, tmp_path: Path
) -> None:
    # Seed 002 serves /models/ssd/01: TF Serving reads it as version 1, and so does export.
    base = tmp_path / "m"
    (base / "01").mkdir(parents=True)
    (base / "01" / "marker").write_text("someone else's model")
    (base / "00000007").mkdir()
    assert {v: p.name for v, p in scan_base_path(base).items()} == {1: "01", 7: "00000007"}
    with pytest.raises(ExportUsageError, match="version 1 already exists.*--overwrite"):
        export_variants(tiny_classifier_pb, base, variants="original", progress=False)
    export_variants(tiny_classifier_pb, base, variants="original", overwrite=True, progress=False)
    # Overwritten in place: no second dir for version 1 (that would be a duplicate).
    assert sorted(p.name for p in base.iterdir() if not p.name.startswith(".")) == [
        "00000007",
        "01",
        "variants.json",
    ]
    assert (base / "01" / "saved_model.pb").exists() and not (base / "01" / "marker").exists()
    # New versions get canonical names.
    export_variants(tiny_classifier_pb, base, variants="original,optimized", progress=False)
    assert (base / "8" / "saved_model.pb").exists()


def test_two_dirs_for_one_version_are_refused(tmp_path: Path) -> None:
    (tmp_path / "1").mkdir()
    (tmp_path / "001").mkdir()
    with pytest.raises(ExportUsageError, match="'001' and '1', which both name version 1"):
        scan_base_path(tmp_path)
