from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tfsuite.export.manifest import VariantRecord, VariantsManifest


def test_protos_import_without_tensorflow_runtime() -> None:
    code = (
        "import sys, tfsuite.clients.codec;"
        "from tensorflow_serving.apis import prediction_service_pb2_grpc, model_service_pb2_grpc;"
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_tensorflow_still_imports_after_light_protos() -> None:
    code = (
        "import numpy as np, tfsuite.clients.codec as c; import tensorflow as tf;"
        "p = c.make_tensor_proto(np.arange(3, dtype='float32'));"
        "print(tf.make_ndarray(p).tolist(), int(tf.reduce_sum(tf.constant([1, 2]))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[0.0, 1.0, 2.0] 3"


def test_manifest_roundtrip_is_atomic(tmp_path) -> None:
    m = VariantsManifest(
        model_name="m",
        source="x.pb",
        source_format="frozen_graph",
        source_sha256="ab",
        tf_version="2.21",
    )
    m.upsert(
        VariantRecord(version=2, variant="weight_quant", precision="int8-weights", status="ok")
    )
    m.upsert(VariantRecord(version=1, variant="original", precision="fp32", status="ok"))
    m.upsert(
        VariantRecord(
            version=3, variant="trt_fp16", precision="fp16", status="skipped", reason="no TensorRT"
        )
    )
    m.save(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["variants.json"]
    loaded = VariantsManifest.load(tmp_path)
    assert [v.version for v in loaded.variants] == [1, 2, 3]
    assert loaded.version_labels() == {"original": 1, "weight_quant": 2}
    assert (
        json.loads((tmp_path / "variants.json").read_text())["variants"][2]["status"] == "skipped"
    )


def test_cli_unknown_error_is_one_line(tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tfsuite", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "export" in out.stdout and "serve" in out.stdout
    with pytest.raises(subprocess.CalledProcessError):
        subprocess.run(
            [sys.executable, "-m", "tfsuite", "no-such-command"], capture_output=True, check=True
        )
