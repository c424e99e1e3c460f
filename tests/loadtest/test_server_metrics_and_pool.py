"""Prometheus scrape + deltas (both label styles) and the request pool's inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tfsuite.clients.specs import ModelMetadata, SignatureSpec, TensorSpec
from tfsuite.errors import UsageError
from tfsuite.loadtest.request_pool import SYNTHETIC_SIDE, RequestPool
from tfsuite.loadtest.server_metrics import Snapshot, server_deltas

OURS = """# TYPE :tensorflow:serving:request_count counter
:tensorflow:serving:request_count{{model_name="m",model_version="1",status="OK"}} {ok1}
:tensorflow:serving:request_count{{model_name="m",model_version="2",status="OK"}} {ok2}
:tensorflow:serving:request_count{{model_name="m",model_version="2",status="NOT_FOUND"}} {nf2}
# TYPE :tensorflow:serving:batching_session:processed_batch_size histogram
:tensorflow:serving:batching_session:processed_batch_size_bucket{{model_name="m",model_version="2",le="4"}} {b4}
:tensorflow:serving:batching_session:processed_batch_size_bucket{{model_name="m",model_version="2",le="+Inf"}} {binf}
:tensorflow:serving:batching_session:processed_batch_size_sum{{model_name="m",model_version="2"}} {bsum}
:tensorflow:serving:batching_session:processed_batch_size_count{{model_name="m",model_version="2"}} {binf}
# TYPE :tensorflow:serving:batching_session:padding_size histogram
# TYPE some_other_metric counter
some_other_metric_total 5
"""

TF_SERVING = """# TYPE :tensorflow:serving:request_count counter
:tensorflow:serving:request_count{{model_name="m",status="OK"}} {ok}
:tensorflow:serving:request_count{{model_name="other",status="OK"}} 1000
"""


def test_deltas_per_version_on_a_server_that_labels_versions() -> None:
    before = Snapshot.parse(OURS.format(ok1=10, ok2=5, nf2=0, b4=1, binf=2, bsum=5))
    after = Snapshot.parse(OURS.format(ok1=30, ok2=9, nf2=3, b4=2, binf=6, bsum=21))
    d2 = server_deltas(before, after, "m", 2)
    assert d2 is not None and d2.per_version
    assert d2.request_count_by_status == {"OK": 4.0, "NOT_FOUND": 3.0}
    assert d2.processed_batch_size is not None
    assert (d2.processed_batch_size.count, d2.processed_batch_size.sum) == (4.0, 16.0)
    assert d2.processed_batch_size.buckets == {"4": 1.0, "+Inf": 4.0}
    # declared but empty (no batch formed): a zero delta, not an unknown one
    assert d2.padding_size is not None and d2.padding_size.count == 0
    assert d2.queuing_latency_us is None  # not exported at all
    d1 = server_deltas(before, after, "m", 1)
    assert d1 is not None and d1.request_count_by_status == {"OK": 20.0}


def test_deltas_cover_the_whole_model_on_tf_serving_without_version_labels() -> None:
    deltas = server_deltas(
        Snapshot.parse(TF_SERVING.format(ok=1)), Snapshot.parse(TF_SERVING.format(ok=41)), "m", 2
    )
    assert deltas is not None and not deltas.per_version
    assert deltas.request_count_by_status == {"OK": 40.0}
    assert server_deltas(None, Snapshot(), "m", 1) is None


def test_load_time_from_tf_servings_load_latency_metric() -> None:
    from tfsuite.loadtest.server_metrics import load_seconds

    text = """# TYPE :tensorflow:cc:saved_model:load_latency counter
:tensorflow:cc:saved_model:load_latency{model_path="/models/m/1"} 1500000
:tensorflow:cc:saved_model:load_latency{model_path="/models/m/2"} 250000
:tensorflow:cc:saved_model:load_latency{model_path="/models/mm/2"} 999
"""
    snap = Snapshot.parse(text)
    assert load_seconds(snap, "m", 1) == 1.5 and load_seconds(snap, "m", 2) == 0.25
    assert load_seconds(snap, "m", 3) is None and load_seconds(None, "m", 1) is None


def _meta(inputs: dict[str, TensorSpec]) -> ModelMetadata:
    sig = SignatureSpec("serving_default", "tensorflow/serving/predict", inputs, {})
    return ModelMetadata("m", 1, {"serving_default": sig})


def test_synthetic_pool_follows_the_signature_and_encodes_once_per_version() -> None:
    meta = _meta({"image": TensorSpec("image", "uint8", (None, None, None, 3))})
    pool = RequestPool.from_metadata(meta, batch_size=4)
    assert pool.inputs[0]["image"].shape == (4, SYNTHETIC_SIDE, SYNTHETIC_SIDE, 3)
    assert pool.inputs[0]["image"].dtype == np.uint8 and pool.inputs[0]["image"].std() > 0
    first = pool.rpcs(1)
    assert pool.rpcs(1) is first  # encoded once
    assert pool.rpcs(2)[0].request != first[0].request  # the version is in the request
    assert pool.rpcs(None, "original")[0].label == "original"


def test_pool_from_npy_npz_and_images(tmp_path: Path) -> None:
    import cv2

    x = TensorSpec("x", "float32", (None, 3))
    npy = tmp_path / "npy"
    npy.mkdir()
    for i in range(4):
        np.save(npy / f"{i}.npy", np.full(3, i, np.float32))  # one example, no batch axis
    pool = RequestPool.from_metadata(_meta({"x": x}), batch_size=2, inputs_dir=npy)
    assert [r["x"].shape for r in pool.inputs] == [(2, 3), (2, 3)]
    assert pool.inputs[1]["x"][0, 0] == 2.0 and pool.source == str(npy)

    npz = tmp_path / "npz"
    npz.mkdir()
    np.savez(npz / "a.npz", x=np.ones((1, 3), np.float32))
    with pytest.raises(UsageError, match="no array for input"):
        RequestPool.from_metadata(
            _meta({"x": x, "y": TensorSpec("y", "float32", (None,))}), inputs_dir=npz
        )

    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.jpg"), np.full((40, 60, 3), 90, np.uint8))
    cv2.imwrite(str(images / "b.png"), np.full((30, 20, 3), 10, np.uint8))
    spec = TensorSpec("image_tensor", "uint8", (None, None, None, 3))
    pool = RequestPool.from_metadata(_meta({"image_tensor": spec}), 2, images)
    (request,) = pool.inputs
    assert request["image_tensor"].shape == (2, 40, 60, 3)  # resized to the first image

    with pytest.raises(UsageError, match="no .npy, .npz or image files"):
        RequestPool.from_metadata(_meta({"x": x}), inputs_dir=tmp_path / "npz" / "..")
