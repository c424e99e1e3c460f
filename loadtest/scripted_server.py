"""A TF-Serving-compatible gRPC server whose latency is known in advance (for testing the
load generator itself, the way one calibrates an instrument against a reference).

:class:`ScriptedServer` speaks the real ``tensorflow.serving`` protos (PredictionService
``Predict`` and ``GetModelMetadata``, ModelService ``GetModelStatus``) for one model with
the given versions and labels, and answers every Predict after a delay taken from a seeded
:class:`LatencySchedule`: request *i* (in arrival order) takes ``schedule.delay(i)``
seconds, and every ``stall_every``-th request also freezes the whole server for
``stall_s`` (stop-the-world, like a garbage-collection or compaction pause: every request
in flight or arriving during the stall is answered only after it ends). With the schedule
known, the true latency distribution is known, so the engine's figures can be checked
against it (``benchmarks/loadgen.py``, ``tests/loadtest``).

    schedule = LatencySchedule(seed=1, base_s=0.04, jitter_s=0.04, stall_every=2000)
    async with ScriptedServer(schedule, versions={1: "original", 2: "weight_quant"}) as srv:
        ...  # srv.address is 127.0.0.1:PORT

No TensorFlow: the answer is a tiny fixed float tensor. As a process (the load generator
must not share its CPU with the server it measures)::

    python -m tfsuite.loadtest.scripted_server --base-ms 40 --jitter-ms 40 --stall-every 2000

prints TF Serving's start-up line ``Running gRPC ModelServer at 127.0.0.1:PORT ...`` and
serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
import numpy as np

import tfsuite.protos  # noqa: F401

# isort: split
from tensorflow.core.framework import tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
)

from tfsuite.clients.codec import make_tensor_proto

__all__ = ["LatencySchedule", "ScriptedServer", "serve_in_thread", "spawn"]


@dataclass(frozen=True)
class LatencySchedule:
    """Per-request service times: ``base_s + U(0, jitter_s)`` (seeded), plus a stall of
    ``stall_s`` on every ``stall_every``-th request (0: never)."""

    seed: int = 0
    base_s: float = 0.001
    jitter_s: float = 0.0
    stall_every: int = 0
    stall_s: float = 1.0
    length: int = 1 << 20
    """Schedule entries precomputed (it repeats after that)."""
    _delays: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        delays = self.base_s + rng.random(self.length) * self.jitter_s
        object.__setattr__(self, "_delays", delays)

    def delay(self, index: int) -> float:
        return float(self._delays[index % self.length])

    def stalls(self, index: int) -> bool:
        return self.stall_every > 0 and (index + 1) % self.stall_every == 0

    def delays(self, count: int) -> np.ndarray:
        """The first ``count`` service times (without stalls): the schedule's truth."""
        return np.resize(self._delays, count)


class ScriptedServer:
    """The gRPC server (asyncio, 127.0.0.1, a free port) answering per ``schedule``."""

    def __init__(
        self,
        schedule: LatencySchedule,
        model: str = "scripted",
        versions: Mapping[int, str | None] | None = None,
        *,
        reply_version: int | None = None,
        input_alias: str = "x",
        input_shape: tuple[int, ...] = (-1, 4),
        workers: int = 0,
    ) -> None:
        self.schedule = schedule
        self.model = model
        self.versions = dict(versions or {1: None})
        self.reply_version = reply_version
        """Answer with this version whatever was asked (to test mismatch detection)."""
        self.input_alias = input_alias
        self.input_shape = input_shape
        self.workers = workers
        """At most this many requests in service at once, the rest queue (0: no limit)."""
        self._slots: asyncio.Semaphore | None = None
        self.served = 0
        """Predict requests received so far (the next request's schedule index)."""
        self._paused_until = 0.0
        self._server: grpc.aio.Server | None = None
        self.port = 0
        self._output = make_tensor_proto(np.zeros((1, 2), np.float32))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> ScriptedServer:
        self._slots = asyncio.Semaphore(self.workers) if self.workers else None
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((self._prediction_handler(), self._model_handler()))
        self.port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._server = server
        return self

    async def stop(self, grace: float | None = None) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None

    async def __aenter__(self) -> ScriptedServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- model references ---------------------------------------------------------------------
    async def _resolve(self, spec: model_pb2.ModelSpec, context: Any) -> int:
        if spec.name != self.model:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({spec.name})"
            )
        if spec.HasField("version"):
            if spec.version.value not in self.versions:
                await context.abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"Servable not found for request: Specific({spec.name}, {spec.version.value})",
                )
            return int(spec.version.value)
        if spec.version_label:
            for version, label in self.versions.items():
                if label == spec.version_label:
                    return version
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Unrecognized servable version label: {spec.version_label}",
            )
        return max(self.versions)

    # -- methods -----------------------------------------------------------------------------
    async def _predict(
        self, request: predict_pb2.PredictRequest, context: Any
    ) -> predict_pb2.PredictResponse:
        version = await self._resolve(request.model_spec, context)
        if self._slots is None:
            await self._serve_one(version)
        else:
            async with self._slots:
                await self._serve_one(version)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.model
        response.model_spec.version.value = self.reply_version or version
        response.model_spec.signature_name = "serving_default"
        response.outputs["y"].CopyFrom(self._output)
        return response

    async def _serve_one(self, version: int) -> None:
        """Take request ``self.served``'s scripted time (the same for every ``version``;
        a subclass may script per version instead)."""
        index = self.served
        self.served += 1
        loop = asyncio.get_running_loop()
        if self.schedule.stalls(index):
            self._paused_until = max(self._paused_until, loop.time() + self.schedule.stall_s)
        await asyncio.sleep(self.schedule.delay(index))
        pause = self._paused_until - loop.time()
        if pause > 0:
            await asyncio.sleep(pause)

    async def _metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: Any
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        version = await self._resolve(request.model_spec, context)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.model
        response.model_spec.version.value = version
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        sig = sig_map.signature_def["serving_default"]
        sig.method_name = "tensorflow/serving/predict"
        info = sig.inputs[self.input_alias]
        info.name = f"{self.input_alias}:0"
        info.dtype = types_pb2.DT_FLOAT
        info.tensor_shape.CopyFrom(
            tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in self.input_shape]
            )
        )
        out = sig.outputs["y"]
        out.name = "y:0"
        out.dtype = types_pb2.DT_FLOAT
        response.metadata["signature_def"].Pack(sig_map)
        return response

    async def _status(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: Any
    ) -> get_model_status_pb2.GetModelStatusResponse:
        response = get_model_status_pb2.GetModelStatusResponse()
        if request.model_spec.name != self.model:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"Could not find any versions of model {request.model_spec.name}",
            )
        for version in sorted(self.versions):
            entry = response.model_version_status.add()
            entry.version = version
            entry.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response

    def _prediction_handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            "tensorflow.serving.PredictionService",
            {
                "Predict": _unary(self._predict, predict_pb2.PredictRequest),
                "GetModelMetadata": _unary(
                    self._metadata, get_model_metadata_pb2.GetModelMetadataRequest
                ),
            },
        )

    def _model_handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            "tensorflow.serving.ModelService",
            {"GetModelStatus": _unary(self._status, get_model_status_pb2.GetModelStatusRequest)},
        )


def _unary(handler: Any, request_class: Any) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        handler,
        request_deserializer=request_class.FromString,
        response_serializer=lambda message: message.SerializeToString(),
    )


@contextmanager
def serve_in_thread(server: ScriptedServer) -> Iterator[ScriptedServer]:
    """Run ``server`` on its own event loop in a daemon thread (tests that only check
    correctness; timing checks run it as a process, see :func:`spawn`)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=30)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(0), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


@contextmanager
def spawn(
    args: Sequence[str] = (), *, nice: int = 0
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``python -m tfsuite.loadtest.scripted_server ARGS`` as a process: (process, address),
    ready when its start-up line is read; killed on exit. ``nice`` < 0 raises its priority
    where allowed (benchmarks on a shared machine: a starved reference server would not
    keep its own schedule)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfsuite.loadtest.scripted_server", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    if nice:
        _renice(proc.pid, nice)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the server is listening (or exits)
        if "ModelServer at " not in line:
            raise RuntimeError(f"scripted server did not start: {line!r}")
        address = line.split("ModelServer at ", 1)[1].split(" ", 1)[0]
        yield proc, address
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _renice(pid: int, niceness: int) -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, pid, niceness)
    except OSError:  # not permitted (not root): run at the normal priority
        pass


def _versions(text: str) -> dict[int, str | None]:
    out: dict[int, str | None] = {}
    for item in text.split(","):
        number, _, label = item.partition(":")
        out[int(number)] = label or None
    return out


async def _serve(args: argparse.Namespace) -> None:
    # A latency reference: hand the GIL between gRPC's poller thread and the event loop
    # quickly (the default 5 ms switch interval adds whole milliseconds on a busy machine).
    sys.setswitchinterval(0.0002)
    schedule = LatencySchedule(
        seed=args.seed,
        base_s=args.base_ms / 1e3,
        jitter_s=args.jitter_ms / 1e3,
        stall_every=args.stall_every,
        stall_s=args.stall_s,
    )
    server = ScriptedServer(
        schedule,
        args.model,
        _versions(args.versions),
        reply_version=args.reply_version,
        workers=args.workers,
    )
    await server.start()
    sys.stdout.write(f"Running gRPC ModelServer at {server.address} ...\n")
    sys.stdout.flush()
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    await server.stop(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tfsuite.loadtest.scripted_server")
    parser.add_argument("--model", default="scripted")
    parser.add_argument("--versions", default="1", help="e.g. 1:original,2:weight_quant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base-ms", type=float, default=1.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--stall-every", type=int, default=0)
    parser.add_argument("--stall-s", type=float, default=1.0)
    parser.add_argument("--reply-version", type=int, default=None)
    parser.add_argument("--workers", type=int, default=0)
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
