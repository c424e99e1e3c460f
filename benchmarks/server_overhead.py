"""What ``tfsuite serve`` costs on top of running the SavedModel in-process, measured the way
users meet it: the server in its own process, started as ``tfsuite serve ...`` (ports read
from its TF Serving start-up lines), the clients in another process that imports no
TensorFlow. Ratios within one run; in-process and served calls alternate in small blocks so
a busy machine skews both alike.

1. MobileNetV2, gRPC Predict, batch 1, one client: served p50 / in-process p50 (<= 1.05),
   and the time the server itself adds: served p50 - in-process p50 - transport floor
   (<= 0.3 ms), the floor being the same 600 KB Predict rejected at once (unknown model).
   In-process is the faster of the two ways to run the SavedModel in Python: the Session
   callable the server uses and ``tf.saved_model.load`` + the concrete function.
2. MobileNetV2 with ``--enable_batching`` and 32 clients: throughput / the best in-process
   throughput over batch sizes 1..32 (>= 0.95); as TF Serving's guide says, max_batch_size
   is tuned for throughput: the best in-process batch size, through the model's own
   ``batching_params.pbtxt`` (``--enable_per_model_batching_parameters``).
3. A batch-friendly dense model (in-process batch 32 >= 10x batch 1 in rows/s): with
   batching and 64 clients, requests/s / the server's transport floor (64 clients, every
   request rejected at once) (>= 0.8); without batching beside it.
4. REST 224x224x3 predict: decode time of that JSON body with the dense decoder (<= 15 ms)
   next to the generic path (identical tensors), and the served REST p50.

Prints one rich table. ``python benchmarks/server_overhead.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import queue
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import grpc
import numpy as np

import tfsuite.protos  # noqa: F401  (light TF proto import; must precede the pb2 imports)

# isort: split
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tfsuite.clients.codec import make_tensor_proto

MAX_BATCH = 32
BATCH_TIMEOUT_MICROS = 2000
NUM_BATCH_THREADS = os.cpu_count() or 1
REJECTED = "no_such_model"
#: Alternating measurement windows per throughput variant (medians are reported).
ROUNDS = 3
_GRPC_LINE = re.compile(r"Running gRPC ModelServer at [\w.:]+:(\d+) \.\.\.")
_REST_LINE = re.compile(r"Exporting HTTP/REST API at:[\w.:]+:(\d+) \.\.\.")


@dataclass
class Row:
    metric: str
    value: str
    target: str
    ok: bool | None


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def timed(
    fn: Callable[[], Any], n: int, warmup: int = 3, clock: Callable[[], float] = time.perf_counter
) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = clock()
        fn()
        out.append(clock() - t)
    return out


# -- the client process (no TensorFlow) -------------------------------------------------------


def _request(model: str, in_name: str, shape: str, seed: int = 0) -> predict_pb2.PredictRequest:
    dims = tuple(int(d) for d in shape.split("x"))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    x = np.random.default_rng(seed).random(dims, dtype=np.float32)
    request.inputs[in_name].CopyFrom(make_tensor_proto(x))
    return request


_OPTIONS = [
    ("grpc.max_send_message_length", 2**31 - 1),
    ("grpc.max_receive_message_length", 2**31 - 1),
]


def client_worker() -> None:
    """Reads commands on stdin, answers one line each:

    ``lat PORT MODEL INPUT SHAPE N`` -> N sequential latencies (s) from one sync client;
    ``tput PORT MODEL INPUT SHAPE CLIENTS SECONDS`` -> ``done elapsed`` with CLIENTS
    concurrent grpc.aio clients (NOT_FOUND answers count: that is the rejected floor).
    """
    stubs: dict[tuple[int, str, str, str], tuple[Any, predict_pb2.PredictRequest]] = {}

    def call(stub: Any, request: predict_pb2.PredictRequest) -> None:
        try:
            stub.Predict(request, timeout=120)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise

    async def load(port: int, request: predict_pb2.PredictRequest, clients: int, seconds: float):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=_OPTIONS) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

            async def one() -> None:
                try:
                    await stub.Predict(request, timeout=120)
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.NOT_FOUND:
                        raise

            await one()  # connected before the clock starts
            done, start = 0, time.perf_counter()
            stop = start + seconds

            async def client() -> None:
                nonlocal done
                while time.perf_counter() < stop:
                    await one()
                    done += 1

            await asyncio.gather(*(client() for _ in range(clients)))
            return done, time.perf_counter() - start

    for line in sys.stdin:
        kind, port, model, in_name, shape, *rest = line.split()
        if kind == "lat":
            key = (int(port), model, in_name, shape)
            if key not in stubs:
                channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=_OPTIONS)
                stubs[key] = (
                    prediction_service_pb2_grpc.PredictionServiceStub(channel),
                    _request(model, in_name, shape),
                )
            stub, request = stubs[key]
            samples = timed(lambda s=stub, r=request: call(s, r), int(rest[0]), warmup=2)
            print(" ".join(f"{v:.6f}" for v in samples), flush=True)
        else:
            done, elapsed = asyncio.run(
                load(int(port), _request(model, in_name, shape), int(rest[0]), float(rest[1]))
            )
            print(done, elapsed, flush=True)


class Clients:
    """The client process (``client_worker``)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--client-worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _ask(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline()

    def latencies(self, port: int, model: str, in_name: str, shape: str, n: int) -> list[float]:
        return [float(v) for v in self._ask(f"lat {port} {model} {in_name} {shape} {n}").split()]

    def throughput(
        self, port: int, model: str, in_name: str, shape: str, clients: int, seconds: float
    ) -> float:
        done, elapsed = self._ask(
            f"tput {port} {model} {in_name} {shape} {clients} {seconds}"
        ).split()
        return int(done) / float(elapsed)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


# -- the server process -----------------------------------------------------------------------


@dataclass
class Served:
    grpc_port: int
    rest_port: int


@contextmanager
def serve(flags: list[str]) -> Iterator[Served]:
    """``tfsuite serve FLAGS`` as a user starts it; ports from its start-up lines."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfsuite", "serve", "--port=-1", "--rest_api_port=-1", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    grpc_port = rest_port = 0
    seen = []
    try:
        while not (grpc_port and rest_port):
            line = lines.get(timeout=600)
            if not line:
                raise RuntimeError("tfsuite serve exited:\n" + "".join(seen))
            seen.append(line)
            if m := _GRPC_LINE.search(line):
                grpc_port = int(m[1])
            if m := _REST_LINE.search(line):
                rest_port = int(m[1])
        yield Served(grpc_port, rest_port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- models and in-process runs (this process imports TensorFlow) -----------------------------


def build_mobilenet(root: Path) -> Path:
    from tfsuite.export.examples import build_classifier

    files = build_classifier(root / "examples")
    base = root / "mobilenet"
    base.mkdir(parents=True)
    os.rename(files.saved_model, base / "1")
    return base


def build_dense(root: Path, width: int = 64, layers: int = 48) -> Path:
    """A batch-friendly MLP: many small layers, so batch 1 pays per-op costs that a batch of
    32 shares (in-process rows/s at batch 32 is ~20x batch 1 here), while a batched row
    costs a few microseconds: a server that batches well stays transport-bound."""
    import tensorflow as tf

    rng = np.random.default_rng(0)

    class Dense(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = [
                tf.Variable(rng.standard_normal((width, width), dtype=np.float32) / width**0.5)
                for _ in range(layers)
            ]

        @tf.function(input_signature=[tf.TensorSpec([None, width], tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            for w in self.w:
                x = tf.nn.relu(tf.matmul(x, w))
            return {"y": x}

    module = Dense()
    base = root / "dense"
    tf.saved_model.save(module, str(base / "1"), signatures={"serving_default": module.serve})
    return base


def in_process_worker(way: str, base: str) -> None:
    """The SavedModel run in-process, alone in its process (as a user's script runs it).

    ``way``: ``session`` (the server's Session callable) or ``function``
    (``tf.saved_model.load`` + the concrete function). Commands on stdin, one line out each:
    ``lat SHAPE N`` -> N latencies (s); ``tput SHAPE SECONDS`` -> rows/s (SHAPE's dim 0 is
    the batch).
    """
    from tfsuite.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    import tensorflow as tf

    from tfsuite.server.servable import Servable

    if way == "session":
        runner = Servable.load("m", 1, Path(base) / "1", ["serve"]).runner("serving_default")
        (in_name,) = runner.inputs

        def call(x: np.ndarray) -> Any:
            return runner.run({in_name: x})
    else:
        fn = tf.saved_model.load(str(Path(base) / "1")).signatures["serving_default"]
        (in_name,) = fn.structured_input_signature[1].keys()

        def call(x: np.ndarray) -> Any:
            return {k: v.numpy() for k, v in fn(**{in_name: tf.constant(x)}).items()}

    print(in_name, flush=True)
    rng = np.random.default_rng(0)
    for line in sys.stdin:
        kind, shape, arg = line.split()
        x = rng.random(tuple(int(d) for d in shape.split("x")), dtype=np.float32)
        if kind == "lat":
            samples = timed(lambda x=x: call(x), int(arg), 1)
            print(" ".join(f"{v:.6f}" for v in samples), flush=True)
        else:
            call(x)
            done, start = 0, time.perf_counter()
            while time.perf_counter() - start < float(arg):
                call(x)
                done += x.shape[0]
            print(done / (time.perf_counter() - start), flush=True)


class InProcess:
    """One ``in_process_worker``."""

    def __init__(self, way: str, base: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--inproc-worker", way, str(base)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.input_name = self.proc.stdout.readline().strip()

    def _ask(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline()

    def latencies(self, shape: str, n: int) -> list[float]:
        return [float(v) for v in self._ask(f"lat {shape} {n}").split()]

    def rows_per_second(self, row_shape: str, batch: int, seconds: float) -> float:
        return float(self._ask(f"tput {batch}x{row_shape} {seconds}"))

    def best_throughput(self, row_shape: str, seconds: float) -> tuple[int, dict[int, float]]:
        """(best batch size, rows/s per batch size) over batch sizes 1..32."""
        rates = {b: self.rows_per_second(row_shape, b, seconds) for b in (1, 2, 4, 8, 16, 32)}
        return max(rates, key=rates.__getitem__), rates

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _batching_text(max_batch_size: int) -> str:
    return (
        f"max_batch_size {{ value: {max_batch_size} }} "
        f"batch_timeout_micros {{ value: {BATCH_TIMEOUT_MICROS} }} "
        f"num_batch_threads {{ value: {NUM_BATCH_THREADS} }} "
        "max_enqueued_batches { value: 100 }"
    )


# -- REST -------------------------------------------------------------------------------------


def rest_post(port: int, path: str, body: bytes) -> Callable[[], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def post() -> bytes:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")
        return data

    return post


# -- the run ----------------------------------------------------------------------------------


def main() -> None:
    if sys.argv[1:] == ["--client-worker"]:
        client_worker()
        return
    if sys.argv[1:2] == ["--inproc-worker"]:
        in_process_worker(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args()
    blocks = 6 if args.quick else 16  # alternating blocks of 5 calls each
    window = 2.0 if args.quick else 5.0  # seconds per throughput window

    from rich.console import Console
    from rich.table import Table

    from tfsuite.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    import orjson

    from tfsuite.server.rest_dense import scan_predict_body
    from tfsuite.server.rest_json import parse_json, parse_predict_body

    console = Console()
    rows: list[Row] = []
    clients = Clients()
    with tempfile.TemporaryDirectory(prefix="server_overhead_") as tmp:
        root = Path(tmp)
        console.log("building models")
        mobile_base, dense_base = build_mobilenet(root), build_dense(root)
        config = root / "models.config"
        config.write_text(
            "model_config_list { "
            f'config {{ name: "mobilenet" base_path: "{mobile_base}" model_platform: "tensorflow" }} '
            f'config {{ name: "dense" base_path: "{dense_base}" model_platform: "tensorflow" }} }}'
        )
        params = root / "batching_parameters.txt"
        params.write_text(_batching_text(MAX_BATCH))
        plain = [f"--model_config_file={config}", "--file_system_poll_wait_seconds=0"]
        batching = [
            *plain,
            "--enable_batching",
            f"--batching_parameters_file={params}",
            "--enable_per_model_batching_parameters",
        ]

        mobile_runs = {
            "Session callable": InProcess("session", mobile_base),
            "tf.function": InProcess("function", mobile_base),
        }
        mob_in = mobile_runs["Session callable"].input_name
        dense_run = InProcess("session", dense_base)
        dense_in = dense_run.input_name
        x1 = np.random.default_rng(0).random((1, 224, 224, 3), dtype=np.float32)
        mob_shape, dense_shape = "1x224x224x3", "1x64"

        # -- 1. batch-1 latency: in-process (both ways) vs served vs the transport floor ---------
        with serve(plain) as srv:
            console.log(f"tfsuite serve up (gRPC {srv.grpc_port}, REST {srv.rest_port})")
            samples: dict[str, list[float]] = {k: [] for k in [*mobile_runs, "served", "floor"]}
            for _ in range(blocks):
                for name, run in mobile_runs.items():
                    samples[name] += run.latencies(mob_shape, 5)
                samples["served"] += clients.latencies(
                    srv.grpc_port, "mobilenet", mob_in, mob_shape, 5
                )
                samples["floor"] += clients.latencies(srv.grpc_port, REJECTED, mob_in, mob_shape, 5)
            medians = {k: p50(v) for k, v in samples.items()}
            ways = {k: medians[k] for k in mobile_runs}
            fastest = min(ways, key=ways.__getitem__)
            inproc, served, floor = ways[fastest], medians["served"], medians["floor"]
            added = served - inproc - floor
            for name, value in ways.items():
                rows.append(
                    Row(f"mobilenet b1: in-process p50, {name}", f"{value * 1e3:.2f} ms", "", None)
                )
            rows += [
                Row(
                    "mobilenet b1: served gRPC p50 (client process)",
                    f"{served * 1e3:.2f} ms",
                    "",
                    None,
                ),
                Row(
                    "mobilenet b1: transport floor (600 KB Predict rejected at once)",
                    f"{floor * 1e3:.2f} ms",
                    "",
                    None,
                ),
                Row(
                    f"mobilenet b1: served / in-process ({fastest})",
                    f"{served / inproc:.3f}x",
                    "≤ 1.05x",
                    served / inproc <= 1.05,
                ),
                Row(
                    "mobilenet b1: served − in-process − floor (server's own time)",
                    f"{added * 1e3:.2f} ms",
                    "≤ 0.3 ms",
                    added <= 3e-4,
                ),
            ]
            console.log("batch-1 latency done")
            for run in mobile_runs.values():
                if run is not mobile_runs["Session callable"]:
                    run.close()

            # -- 4. REST 224x224x3: dense decoder vs generic, served p50 ------------------------
            body = orjson.dumps({"instances": x1.tolist()})
            dtypes = {mob_in: np.dtype(np.float32)}
            dense_out = scan_predict_body(body).decode(body, dtypes)
            generic_out = parse_predict_body(parse_json(body), dtypes).inputs
            identical = np.array_equal(dense_out[mob_in], generic_out[mob_in])
            post = rest_post(srv.rest_port, "/v1/models/mobilenet:predict", body)
            fast_s, fast_cpu, generic_s, rest_s = [], [], [], []
            for _ in range(blocks):
                fast_s += timed(lambda: scan_predict_body(body).decode(body, dtypes), 3, warmup=1)
                # CPU time too: on an oversubscribed machine wall time includes waiting for a core
                fast_cpu += timed(
                    lambda: scan_predict_body(body).decode(body, dtypes), 3, 0, time.thread_time
                )
                generic_s += timed(
                    lambda: parse_predict_body(parse_json(body), dtypes), 3, warmup=0
                )
                rest_s += timed(post, 3, warmup=0)
            fast, generic, rest = p50(fast_s), p50(generic_s), p50(rest_s)
            rows += [
                Row(
                    f"REST 224x224x3 ({len(body) / 1e6:.1f} MB): dense decoder p50",
                    f"{fast * 1e3:.2f} ms",
                    "≤ 15 ms",
                    fast <= 0.015,
                ),
                Row(
                    "REST 224x224x3: dense decoder p50, CPU time (thread_time)",
                    f"{p50(fast_cpu) * 1e3:.2f} ms",
                    "≤ 15 ms",
                    p50(fast_cpu) <= 0.015,
                ),
                Row(
                    "REST 224x224x3: generic decode (orjson + numpy) p50",
                    f"{generic * 1e3:.2f} ms",
                    "",
                    None,
                ),
                Row("REST 224x224x3: dense == generic tensors", str(identical), "True", identical),
                Row("REST 224x224x3: served predict p50", f"{rest * 1e3:.2f} ms", "", None),
                Row(
                    "REST 224x224x3: dense decode share of served p50",
                    f"{fast / rest:.1%}",
                    "",
                    None,
                ),
            ]
            console.log("REST done")

            # -- 2. and 3.: throughput, every variant in each of ROUNDS alternating windows ----
            # TF Serving's guide: tune max_batch_size for throughput. MobileNetV2 gets the best
            # in-process batch size (its own batching_params.pbtxt), the dense model 32.
            session = mobile_runs["Session callable"]
            best_b, rates = session.best_throughput("224x224x3", window / 4)
            (mobile_base / "1" / "batching_params.pbtxt").write_text(_batching_text(best_b))
            (dense_base / "1" / "batching_params.pbtxt").write_text(_batching_text(MAX_BATCH))
            with serve(batching) as bsrv:
                console.log(
                    f"tfsuite serve --enable_batching up (mobilenet max_batch_size {best_b})"
                )
                tput: dict[str, list[float]] = {}

                def add(key: str, value: float) -> None:
                    tput.setdefault(key, []).append(value)

                for _ in range(ROUNDS):
                    add("mob_inproc", session.rows_per_second("224x224x3", best_b, window))
                    add(
                        "mob_plain",
                        clients.throughput(
                            srv.grpc_port, "mobilenet", mob_in, mob_shape, 32, window
                        ),
                    )
                    add(
                        "mob_batched",
                        clients.throughput(
                            bsrv.grpc_port, "mobilenet", mob_in, mob_shape, 32, window
                        ),
                    )
                    add("dense_b1", dense_run.rows_per_second("64", 1, window / 2))
                    add("dense_b32", dense_run.rows_per_second("64", 32, window / 2))
                    add(
                        "floor",
                        clients.throughput(
                            srv.grpc_port, REJECTED, dense_in, dense_shape, 64, window
                        ),
                    )
                    add(
                        "dense_plain",
                        clients.throughput(
                            srv.grpc_port, "dense", dense_in, dense_shape, 64, window
                        ),
                    )
                    add(
                        "dense_batched",
                        clients.throughput(
                            bsrv.grpc_port, "dense", dense_in, dense_shape, 64, window
                        ),
                    )
            console.log("throughput done")
        session.close()
        dense_run.close()
        clients.close()

    med = {k: p50(v) for k, v in tput.items()}
    best_rate, mob_plain, mob_batched = med["mob_inproc"], med["mob_plain"], med["mob_batched"]
    floor_rps, dense_plain_rps = med["floor"], med["dense_plain"]
    dense_batched_rps = med["dense_batched"]
    dense_rates = {1: med["dense_b1"], 32: med["dense_b32"]}
    gain = dense_rates[32] / dense_rates[1]
    rows += [
        Row(
            "mobilenet: in-process rows/s by batch "
            + ", ".join(f"{b}:{r:.1f}" for b, r in rates.items()),
            f"batch {best_b}: {best_rate:.1f} (median of {ROUNDS} windows)",
            "",
            None,
        ),
        Row("mobilenet: served img/s, 32 clients, no batching", f"{mob_plain:.1f}", "", None),
        Row(
            "mobilenet: served img/s, 32 clients, --enable_batching", f"{mob_batched:.1f}", "", None
        ),
        Row(
            "mobilenet: batching / best in-process",
            f"{mob_batched / best_rate:.2f}x",
            "≥ 0.95x",
            mob_batched / best_rate >= 0.95,
        ),
        Row(
            "dense 48x64: in-process rows/s batch 32 / batch 1", f"{gain:.1f}x", "≥ 10x", gain >= 10
        ),
        Row(
            "dense: server transport floor, 64 clients rejected at once",
            f"{floor_rps:.0f} req/s",
            "",
            None,
        ),
        Row(
            "dense: served req/s, 64 clients, no batching",
            f"{dense_plain_rps:.0f} ({dense_plain_rps / floor_rps:.2f}x floor)",
            "",
            None,
        ),
        Row(
            "dense: served req/s, 64 clients, --enable_batching",
            f"{dense_batched_rps:.0f}",
            "",
            None,
        ),
        Row(
            "dense: batching / transport floor",
            f"{dense_batched_rps / floor_rps:.2f}x",
            "≥ 0.8x",
            dense_batched_rps / floor_rps >= 0.8,
        ),
    ]

    load = os.getloadavg()[0]
    table = Table(
        title=f"tfsuite serve overhead ({os.cpu_count()} CPUs, load average {load:.1f} at the end)"
    )
    for col in ("metric", "value", "target", "ok"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            row.metric, row.value, row.target, "" if row.ok is None else ("✓" if row.ok else "✗")
        )
    console.print(table)


if __name__ == "__main__":
    main()
