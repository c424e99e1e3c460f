"""What the embedded server's core adds per request, below the protocols (one run, one table).

Interleaves, call by call, on the same loaded SavedModel signature:

- ``in-process``: ``loaded.signatures[key](**{alias: tf.constant(x)})`` + ``.numpy()``;
- ``DataPlane.predict``: servable lookup, input checks, metrics, the same call;
- ``DataPlane.predict`` with ``--enable_batching`` (timeout 0, one batch thread): plus the
  queue hand-off to a batch thread and the merge/split;
- ``ServerCore.predict``: plus decoding a ``PredictRequest`` and encoding the response.

Models: the half_plus_two-style tiny model (8 floats) and, with ``--mobilenet``, a
MobileNetV2 (224x224x3, random weights). ``python benchmarks/server_core_overhead.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfsuite.runtime import import_tensorflow_quietly

import_tensorflow_quietly()  # TensorFlow's C++ start-up lines would bury the table

import numpy as np
import tensorflow as tf
from rich.console import Console
from rich.table import Table

import tfsuite.protos  # noqa: F401

# isort: split
from tensorflow_serving.apis import predict_pb2

from tfsuite.clients.codec import make_tensor_proto
from tfsuite.server.core import ServerCore
from tfsuite.server.dataplane import DataPlane, RequestSpec
from tfsuite.server.options import ServerOptions
from tfsuite.serving_configs.batching import (
    BatchingOptions,
    write_batching_parameters,
)


def build_tiny(out: Path) -> tuple[str, np.ndarray]:
    class HalfPlusTwo(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
        def predict(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": 0.5 * x + 2.0}

    m = HalfPlusTwo()
    tf.saved_model.save(m, str(out / "1"), signatures={"serving_default": m.predict})
    return "x", np.arange(8, dtype=np.float32).reshape(1, 8)


def build_mobilenet(out: Path) -> tuple[str, np.ndarray]:
    tf.keras.utils.set_random_seed(0)
    net = tf.keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))

    @tf.function(input_signature=[tf.TensorSpec([None, 224, 224, 3], tf.float32, name="input")])
    def serve(input: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"probabilities": net(input, training=False)}

    tf.saved_model.save(net, str(out / "1"), signatures={"serving_default": serve})
    return "input", np.random.default_rng(0).random((1, 224, 224, 3), dtype=np.float32)


def measure(calls: dict[str, Callable[[], object]], n: int) -> dict[str, float]:
    """p50 seconds per call, the calls interleaved so drift hits them alike."""
    for call in calls.values():
        for _ in range(max(3, n // 20)):
            call()
    samples: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(n):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in samples.items()}


def run(
    name: str, base: Path, alias: str, x: np.ndarray, n: int, tmp: Path
) -> list[tuple[str, float, float]]:
    params = write_batching_parameters(
        tmp / f"{name}-batching.txt",
        BatchingOptions(max_batch_size=32, batch_timeout_micros=0, num_batch_threads=1),
    )
    common = {"model_name": name, "model_base_path": str(base), "file_system_poll_wait_seconds": 0}
    core = ServerCore(ServerOptions(**common))
    batched = DataPlane(
        ServerOptions(**common, enable_batching=True, batching_parameters_file=str(params))
    )
    core.start()
    batched.start()
    try:
        fn = tf.saved_model.load(str(base / "1")).signatures["serving_default"]
        request = predict_pb2.PredictRequest()
        request.model_spec.name = name
        request.inputs[alias].CopyFrom(make_tensor_proto(x))
        spec = RequestSpec(name)
        p50 = measure(
            {
                "in-process signature call": lambda: {
                    k: v.numpy() for k, v in fn(**{alias: tf.constant(x)}).items()
                },
                "DataPlane.predict": lambda: core.dataplane.predict(spec, {alias: x}),
                "DataPlane.predict, batching on": lambda: batched.predict(spec, {alias: x}),
                "ServerCore.predict (protos)": lambda: core.predict(request),
            },
            n,
        )
    finally:
        core.stop()
        batched.stop()
    base_p50 = p50["in-process signature call"]
    return [(f"{name}: {k}", v, v - base_p50) for k, v in p50.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="calls per variant (tiny model)")
    parser.add_argument("--mobilenet", action="store_true", help="also MobileNetV2 224x224x3")
    args = parser.parse_args()
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        alias, x = build_tiny(tmp / "tiny")
        rows += run("tiny", tmp / "tiny", alias, x, args.n, tmp)
        if args.mobilenet:
            alias, x = build_mobilenet(tmp / "mobilenet")
            rows += run("mobilenet", tmp / "mobilenet", alias, x, max(30, args.n // 40), tmp)
    table = Table(title="server core overhead per request (p50, interleaved)")
    table.add_column("path")
    table.add_column("p50", justify="right")
    table.add_column("added vs in-process", justify="right")
    for label, value, added in rows:
        table.add_row(label, f"{value * 1e3:.3f} ms", f"{added * 1e3:+.3f} ms")
    Console().print(table)


if __name__ == "__main__":
    main()
