"""Client-layer performance targets, measured as ratios in one run, printed as one table.

1. Encoding a 1x224x224x3 float32 Predict request: ``tfsuite.clients`` (wire encoder) vs
   ``tf.make_tensor_proto`` + ``PredictRequest`` + serialize (target >= 2x). Also shown:
   the message-level encoder vs ``tf.make_tensor_proto`` alone.
2. Decoding a 1x100x4 float32 tensor: ``codec.make_ndarray`` vs ``tf.make_ndarray`` (>= 2x).
3. ``AsyncTFServingClient.predict`` with 64 requests in flight against a trivial model on the
   embedded server (``tfsuite serve`` in its own process, as deployed) vs a bare ``grpc.aio``
   stub loop sending one pre-built request (>= 0.9x).
4. ``tfsuite detect`` over 200 images (read + decoded in its background pool) vs a loop that
   sends already-decoded tensors with the same client (within 10%, i.e. >= 0.9x).

Usage: ``.venv/bin/python benchmarks/client_codec.py [--images 200] [--requests 3000]``
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfsuite.runtime import import_tensorflow_quietly

import_tensorflow_quietly()  # TensorFlow's C++ start-up lines would bury the table

import click
import numpy as np

#: Paired rounds for the server measures (median ratio reported).
ROUNDS = 5


@dataclass
class Row:
    what: str
    ours: float
    reference: float
    unit: str
    target: float
    higher_is_better: bool
    paired_ratio: float | None = None
    """Median of per-round ratios (each round runs both sides back to back), for measures on
    a shared machine whose load drifts between rounds."""
    rounds: tuple[float, ...] = ()
    """The per-round ratios behind ``paired_ratio``."""

    @property
    def ratio(self) -> float:
        if self.paired_ratio is not None:
            return self.paired_ratio
        return self.ours / self.reference if self.higher_is_better else self.reference / self.ours


def paired(what: str, ours: list[float], ref: list[float], unit: str, target: float) -> Row:
    ratios = [o / r for o, r in zip(ours, ref)]
    return Row(
        what,
        statistics.median(ours),
        statistics.median(ref),
        unit,
        target,
        True,
        statistics.median(ratios),
        tuple(ratios),
    )


def best_time(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    """Seconds per call, best of ``repeat`` rounds (the least disturbed by the other tenants)."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def timed_row(
    what: str, ours: Callable[[], object], ref: Callable[[], object], number: int, target: float
) -> Row:
    """Microseconds per call of both sides (lower is better); target 0 means shown only."""
    return Row(
        what, best_time(ours, number) * 1e6, best_time(ref, number) * 1e6, "µs", target, False
    )


def bench_codec() -> list[Row]:
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    from tfsuite.clients import codec

    image = np.random.default_rng(0).random((1, 224, 224, 3), dtype=np.float32)
    head = predict_pb2.PredictRequest()
    head.model_spec.name = "mobilenet_v2"
    head_bytes = head.SerializeToString()

    def tf_request() -> bytes:
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "mobilenet_v2"
        req.inputs["input"].CopyFrom(tf.make_tensor_proto(image))
        return req.SerializeToString()

    def our_request() -> bytes:
        return codec.predict_request_wire(head_bytes, {"input": image})

    parse = predict_pb2.PredictRequest.FromString
    assert parse(our_request()) == parse(tf_request())
    rows = [
        timed_row("encode 1x224x224x3 f32 request", our_request, tf_request, 500, 2.0),
        timed_row(
            "  (message only: make_tensor_proto)",
            lambda: codec.make_tensor_proto(image),
            lambda: tf.make_tensor_proto(image),
            500,
            0.0,
        ),
    ]
    boxes = tf.make_tensor_proto(np.random.default_rng(1).random((1, 100, 4), dtype=np.float32))
    assert np.array_equal(codec.make_ndarray(boxes), tf.make_ndarray(boxes))
    rows.append(
        timed_row(
            "decode 1x100x4 f32 tensor",
            lambda: codec.make_ndarray(boxes),
            lambda: tf.make_ndarray(boxes),
            20000,
            2.0,
        )
    )
    return rows


def build_trivial_model(base: Path) -> Path:
    """y = 0.5 x + 2 as a SavedModel version 1 (the cheapest thing a server can run)."""
    import tensorflow as tf

    class HalfPlusTwo(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def predict(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": 0.5 * x + 2.0}

    m = HalfPlusTwo()
    tf.saved_model.save(m, str(base / "1"), signatures={"serving_default": m.predict})
    return base


def build_detector_base(work: Path) -> Path:
    from tfsuite.export.api import export_variants
    from tfsuite.export.examples import build_detector

    pb = build_detector(work / "examples")
    base = work / "models" / "ssd_mobilenet_v2_tiny"
    export_variants(pb, base, variants="original", progress=False)
    return base


async def _aio_rates(address: str, requests: int, inflight: int) -> tuple[list[float], list[float]]:
    import grpc.aio
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from tfsuite.clients import codec
    from tfsuite.clients.grpc_client import AsyncTFServingClient

    x = np.array([1.0], dtype=np.float32)
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "trivial"
    req.inputs["x"].CopyFrom(codec.make_tensor_proto(x))
    per_worker = requests // inflight

    channel = grpc.aio.insecure_channel(address)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    client = AsyncTFServingClient(address, model="trivial")

    async def bare() -> None:
        for _ in range(per_worker):
            await stub.Predict(req, timeout=30)

    async def ours() -> None:
        for _ in range(per_worker):
            await client.predict({"x": x})

    async def rate(worker: Callable[[], object]) -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(inflight)))  # type: ignore[misc]
        return per_worker * inflight / (time.perf_counter() - t0)

    await rate(bare)  # warm both paths (connections, model warm-up)
    await rate(ours)
    bare_rates, our_rates = [], []
    for i in range(ROUNDS):  # paired rounds, alternating order: both see the same load
        if i % 2:
            our_rates.append(await rate(ours))
            bare_rates.append(await rate(bare))
        else:
            bare_rates.append(await rate(bare))
            our_rates.append(await rate(ours))
    await client.close()
    await channel.close()
    return our_rates, bare_rates


@contextlib.contextmanager
def serve(name: str, base: Path) -> Iterator[str]:
    """``tfsuite serve`` in its own process, as a deployment runs it (the client does not
    share a GIL with the server); yields the gRPC address read from its start-up line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfsuite", "serve", "--port=-1", "--rest_api_port=0",
         f"--model_name={name}", f"--model_base_path={base}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # waits for readiness: the line comes once models are loaded
            m = re.search(r"Running gRPC ModelServer at ([\d.]+:\d+)", line)
            if m:
                break
        else:
            raise RuntimeError(f"tfsuite serve exited with {proc.wait()} before serving")
        # Keep draining stderr so the server never blocks on a full pipe.
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        yield m[1]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bench_async(work: Path, requests: int, inflight: int) -> Row:
    base = build_trivial_model(work / "trivial")
    with serve("trivial", base) as address:
        ours, bare = asyncio.run(_aio_rates(address, requests, inflight))
    return paired(f"async predict, {inflight} in flight", ours, bare, "req/s", 0.9)


def bench_detect(work: Path, n_images: int) -> Row:
    import cv2
    from click.testing import CliRunner

    from tfsuite.clients.cli import detect
    from tfsuite.clients.grpc_client import TFServingClient

    images = work / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n_images):
        img = np.full((240, 320, 3), rng.integers(0, 255, 3), dtype=np.uint8)
        cv2.rectangle(img, (40, 30), (200, 180), rng.integers(0, 255, 3).tolist(), -1)
        cv2.imwrite(str(images / f"{i:06d}.jpg"), img)
    base = build_detector_base(work)
    with serve("ssd_mobilenet_v2_tiny", base) as address:
        files = sorted(images.iterdir())
        decoded = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)[None] for p in files]
        with TFServingClient(address, model="ssd_mobilenet_v2_tiny") as client:
            for img in decoded[:10]:  # warm-up
                client.predict({"image_tensor": img})

            def loop() -> float:
                t0 = time.perf_counter()
                for img in decoded:
                    client.predict({"image_tensor": img})
                return len(decoded) / (time.perf_counter() - t0)

            def cli() -> float:
                t0 = time.perf_counter()
                result = CliRunner().invoke(
                    detect,
                    [
                        "--server",
                        address,
                        "--model",
                        "ssd_mobilenet_v2_tiny",
                        "--no-progress",
                        str(images),
                    ],
                )
                if result.exit_code != 0:
                    raise RuntimeError(f"detect failed: {result.output}") from result.exception
                return n_images / (time.perf_counter() - t0)

            loops, clis = [], []
            for i in range(ROUNDS):  # paired rounds, alternating order: both see the same load
                if i % 2:
                    clis.append(cli())
                    loops.append(loop())
                else:
                    loops.append(loop())
                    clis.append(cli())
    return paired(f"detect over {n_images} images", clis, loops, "img/s", 0.9)


def print_table(rows: list[Row]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title="tfsuite clients: performance targets (one run)",
        caption=f"server rows: `tfsuite serve` in its own process; values and ratio are medians "
        f"of {ROUNDS} paired rounds (both sides back to back, alternating order)",
    )
    for col in ("measure", "tfsuite", "reference", "unit", "ratio", "target", "ok", "rounds"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for r in rows:
        ok = "" if r.target == 0 else ("yes" if r.ratio >= r.target else "NO")
        rounds = " ".join(f"{x:.2f}" for x in r.rounds)
        table.add_row(
            r.what,
            f"{r.ours:,.1f}",
            f"{r.reference:,.1f}",
            r.unit,
            f"{r.ratio:.2f}x",
            f">= {r.target:g}x" if r.target else "-",
            ok,
            rounds,
        )
    Console(width=max(Console().width, 130)).print(table)


@click.command()
@click.option("--images", "n_images", default=200, show_default=True)
@click.option("--requests", default=2560, show_default=True, help="Requests per async round.")
@click.option("--inflight", default=64, show_default=True)
@click.option("--skip-server", is_flag=True, help="Only the codec rows (no embedded server).")
def main(n_images: int, requests: int, inflight: int, skip_server: bool) -> None:
    rows = bench_codec()
    if not skip_server:
        with tempfile.TemporaryDirectory(prefix="tfsuite-client-bench-") as tmp:
            work = Path(tmp)
            rows.append(bench_async(work, requests, inflight))
            rows.append(bench_detect(work, n_images))
    print_table(rows)
    sys.exit(0 if all(r.target == 0 or r.ratio >= r.target for r in rows) else 1)


if __name__ == "__main__":
    main()
