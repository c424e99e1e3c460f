"""Graph rewrites one by one: batch-norm folding, quantize_weights (GTT and built-in), fp16."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfsuite.export.batchnorm import fold_fused_batch_norms
from tfsuite.export.graphs import Endpoint
from tfsuite.export.quantize import fp16_weights, quantize_weights, quantize_weights_rewrite
from tfsuite.export.transforms import gtt_available, optimize_graph


def _conv_bn_graph() -> tuple[tf.compat.v1.GraphDef, list[Endpoint], list[Endpoint]]:
    rng = np.random.default_rng(0)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 12, 12, 8], name="x")
        for i, depthwise in enumerate((False, True)):
            if depthwise:
                y = tf.nn.depthwise_conv2d(
                    x,
                    tf.constant(rng.standard_normal((3, 3, 8, 2)).astype(np.float32)),
                    [1, 1, 1, 1],
                    "SAME",
                )
                channels = 16
            else:
                y = tf.nn.conv2d(
                    x, tf.constant(rng.standard_normal((3, 3, 8, 64)).astype(np.float32)), 1, "SAME"
                )
                channels = 64
            params = [
                tf.constant(rng.uniform(0.5, 1.5, channels).astype(np.float32)) for _ in range(4)
            ]
            y, *_ = tf.compat.v1.nn.fused_batch_norm(
                y,
                params[0],
                params[1],
                mean=params[2],
                variance=params[3],
                is_training=False,
                name=f"bn{i}",
            )
            tf.identity(tf.nn.relu(y), name=f"out{i}")
    gd = graph.as_graph_def()
    ins = [Endpoint("x", "x:0", "float32", [None, 12, 12, 8])]
    outs = [
        Endpoint("out0", "out0:0", "float32", [None, 12, 12, 64]),
        Endpoint("out1", "out1:0", "float32", [None, 12, 12, 16]),
    ]
    return gd, ins, outs


def _run(
    graph_def: tf.compat.v1.GraphDef, feed: np.ndarray, outputs: list[str]
) -> list[np.ndarray]:
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        return session.run(outputs, {"x:0": feed})


@pytest.fixture(scope="module")
def conv_bn():
    gd, ins, outs = _conv_bn_graph()
    feed = np.random.default_rng(1).standard_normal((2, 12, 12, 8)).astype(np.float32)
    return gd, ins, outs, feed, _run(gd, feed, ["out0:0", "out1:0"])


def test_fold_fused_batch_norms_is_exact(conv_bn) -> None:
    gd, _ins, _outs, feed, expected = conv_bn
    assert sum(n.op == "FusedBatchNormV3" for n in gd.node) == 2
    folded, count = fold_fused_batch_norms(gd, keep=["x", "out0", "out1"])
    assert count == 2
    ops = [n.op for n in folded.node]
    assert "FusedBatchNormV3" not in ops and ops.count("BiasAdd") == 2
    # the old weights and four BN vectors per layer are gone: 2 folded weights + 2 biases remain
    assert ops.count("Const") == 4
    for got, want in zip(_run(folded, feed, ["out0:0", "out1:0"]), expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_training_mode_batch_norm_is_left_alone() -> None:
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 4, 4, 2], name="x")
        y = tf.nn.conv2d(x, tf.ones([1, 1, 2, 2]), 1, "SAME")
        out, mean, _ = tf.compat.v1.nn.fused_batch_norm(
            y, tf.ones([2]), tf.zeros([2]), is_training=True
        )
        tf.identity(out + tf.reduce_sum(mean), name="out")
    _, count = fold_fused_batch_norms(graph.as_graph_def(), keep=["x", "out"])
    assert count == 0


@pytest.mark.parametrize("engine", ["gtt", "rewrite"])
def test_quantize_weights_layout_and_accuracy(engine: str, conv_bn) -> None:
    gd, ins, outs, feed, expected = conv_bn
    if engine == "gtt":
        if not gtt_available():
            pytest.skip("the Graph Transform Tool entry point is not in this TensorFlow build")
        quantized, used = quantize_weights(gd, ins, outs)
        assert used == "graph_transforms"
    else:
        quantized = quantize_weights_rewrite(
            fold_fused_batch_norms(gd, keep=["x", "out0", "out1"])[0]
        )
    nodes = {n.name: n for n in quantized.node}
    deq = [n for n in quantized.node if n.op == "Dequantize"]
    # only the 3x3x8x64 conv (4608 elements) reaches the 1024-element threshold
    assert len(deq) == 1 and deq[0].attr["mode"].s == b"MIN_FIRST"
    const = nodes[deq[0].input[0]]
    assert const.attr["dtype"].type == tf.quint8.as_datatype_enum
    got = _run(quantized, feed, ["out0:0", "out1:0"])
    scale = float(np.abs(expected[0]).max())
    assert float(np.abs(got[0] - expected[0]).max()) / scale < 0.05
    np.testing.assert_allclose(
        got[1], expected[1], rtol=1e-4, atol=1e-4
    )  # below threshold: untouched


def test_fp16_weights_store_half_and_cast_back(conv_bn) -> None:
    gd, _, _, feed, expected = conv_bn
    half = fp16_weights(gd)
    halves = [
        n
        for n in half.node
        if n.op == "Const" and n.attr["dtype"].type == tf.float16.as_datatype_enum
    ]
    assert halves and all(
        any(c.op == "Cast" and c.input[0] == h.name for c in half.node) for h in halves
    )
    got = _run(half, feed, ["out0:0"])[0]
    assert float(np.abs(got - expected[0]).max()) / float(np.abs(expected[0]).max()) < 5e-3


def test_optimize_graph_keeps_placeholders_and_results(conv_bn) -> None:
    gd, ins, outs, feed, expected = conv_bn
    optimized, engine = optimize_graph(gd, ins, outs)
    assert engine in {"graph_transforms", "fallback"}
    (placeholder,) = [n for n in optimized.node if n.op == "Placeholder"]
    assert placeholder.attr["shape"].shape == tf.TensorShape([None, 12, 12, 8]).as_proto()
    for got, want in zip(_run(optimized, feed, ["out0:0", "out1:0"]), expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
