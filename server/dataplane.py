"""``DataPlane``: the protocol-independent request path (numpy in, numpy out).

It resolves the servable a request names (``ModelManager``), checks the tensors against the
signature, runs it — through the version's ``DynamicBatcher`` when batching is on — and
records the metrics. It knows nothing of gRPC, HTTP or protobuf request messages;
``tfsuite.server.core.ServerCore`` translates TF Serving's request protos to these calls.

Synchronous and thread-safe: gRPC's thread pool and the REST worker threads call it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc
import numpy as np

import tfsuite.protos  # noqa: F401

# isort: split
from tensorflow_serving.apis import get_model_metadata_pb2

from tfsuite.server.batching import BatchObserver, BatchParams, BatchScheduler, DynamicBatcher
from tfsuite.server.errors import ServingError
from tfsuite.server.example_inference import (
    ClassifyResult,
    classify_result,
    examples_array,
    examples_runner,
    examples_signature,
    regress_result,
)
from tfsuite.server.metrics import ServerMetrics
from tfsuite.server.model_manager import ModelManager, VersionStatus
from tfsuite.server.options import ServerOptions
from tfsuite.server.servable import (
    CLASSIFY_METHOD,
    DEFAULT_SIGNATURE,
    REGRESS_METHOD,
    InputSpec,
    Servable,
    SignatureRunner,
)
from tfsuite.serving_configs.batching import (
    BatchingOptions,
    read_batching_parameters,
    read_per_model_batching,
)
from tfsuite.serving_configs.model_config import ModelServerConfig

__all__ = ["UNKNOWN_MODEL", "ClassifyResult", "DataPlane", "RequestSpec", "WarmupHook"]

_T = TypeVar("_T")

log = logging.getLogger(__name__)

#: ``model_name`` of the request metrics for requests naming a model the config does not have.
UNKNOWN_MODEL = "__unknown__"

#: Replays a fresh servable's warmup records (raising fails the load); set by ServerCore.
WarmupHook = Callable[["DataPlane", Servable], None]


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """Which servable and signature a request addresses (TF Serving's ModelSpec)."""

    name: str
    version: int | None = None
    label: str | None = None
    signature_name: str = DEFAULT_SIGNATURE


class DataPlane:
    """Model management + batching + metrics behind numpy-level request methods."""

    def __init__(
        self,
        options: ServerOptions,
        metrics: ServerMetrics | None = None,
        warmup: WarmupHook | None = None,
    ) -> None:
        self.options = options
        self.metrics = metrics or ServerMetrics()
        self._warmup = warmup
        self._check_method = options.enable_signature_method_name_check
        self._batching: BatchingOptions | None = None
        self._scheduler: BatchScheduler | None = None
        self._batchers: dict[tuple[str, int, str], DynamicBatcher] = {}
        if options.enable_batching:
            if options.batching_parameters_file:
                self._batching = BatchingOptions.from_proto(
                    read_batching_parameters(options.batching_parameters_file)
                )
            else:
                self._batching = BatchingOptions()
        elif options.batching_parameters_file:
            from tfsuite.errors import UsageError

            raise UsageError(
                "--batching_parameters_file requires --enable_batching; add --enable_batching"
            )
        self.manager = ModelManager(options, prepare=self._prepare, on_unload=self._unloaded)
        # Counters are cheap dict updates; keep the request path free of attribute chains.
        self._count = self.metrics.request_count.inc
        self._latency = self.metrics.request_latency.observe
        self._runtime = self.metrics.runtime_latency.observe

    @property
    def batching_options(self) -> BatchingOptions | None:
        """The server-wide batching options (None when batching is off)."""
        return self._batching

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Start batch threads, load the models; returns once the initial versions are loaded."""
        if self._batching is not None and self._scheduler is None:
            self._scheduler = BatchScheduler(self._batching.num_batch_threads)
        try:
            self.manager.start()
        except BaseException:
            self.stop()  # unload what did load: a failed start leaves nothing running
            raise

    def stop(self, drain_seconds: float = 30.0) -> None:
        """Unload every version (in-flight requests finish first) and end the batch threads."""
        self.manager.stop(drain_seconds)
        if self._scheduler is not None:
            self._scheduler.stop(drain_seconds)
            self._scheduler = None

    def reload_config(self, config: ModelServerConfig) -> None:
        self.manager.reload_config(config)

    # -- load/unload hooks ------------------------------------------------------------------
    def _batch_params(self, servable: Servable) -> BatchParams | None:
        if self._batching is None:
            return None
        if self.options.enable_per_model_batching_parameters:
            msg = read_per_model_batching(servable.path)
            if msg is not None:
                return BatchingOptions.from_proto(msg)
        return self._batching

    def _prepare(self, servable: Servable) -> None:
        params = self._batch_params(servable)
        if params is not None and self._scheduler is not None:
            for key, runner in servable.runners.items():
                if any(s.dims is not None and len(s.dims) == 0 for s in runner.inputs.values()):
                    continue  # scalar inputs cannot be batched: run such signatures directly
                self._batchers[(servable.name, servable.version, key)] = self._scheduler.add_queue(
                    runner.run,
                    params,
                    self._batch_observer(servable),
                    name=f"{servable.name}/{servable.version}/{key}",
                )
        try:
            if self._warmup is not None and self.options.enable_model_warmup:
                self._warmup(self, servable)
        except Exception:
            self._unloaded(servable)
            raise

    def _unloaded(self, servable: Servable) -> None:
        mine = (servable.name, servable.version)
        for key in [k for k in self._batchers if k[:2] == mine]:
            self._batchers.pop(key).close()

    def _batch_observer(self, servable: Servable) -> BatchObserver:
        labels = (servable.name, str(servable.version))
        m = self.metrics

        def observe(sizes: Sequence[int], processed: int, queued: Sequence[float]) -> None:
            for size in sizes:
                m.input_batch_size.observe(labels, size)
            m.processed_batch_size.observe(labels, processed)
            m.padding_size.observe(labels, processed - sum(sizes))
            for seconds in queued:
                m.queuing_latency.observe(labels, seconds * 1e6)

        return observe

    # -- running a signature ----------------------------------------------------------------
    def _run(
        self,
        servable: Servable,
        runner: SignatureRunner,
        inputs: dict[str, np.ndarray],
        api: str,
        output_filter: Sequence[str] = (),
    ) -> dict[str, np.ndarray]:
        """Run ``runner`` (through its batch queue if it has one); with ``output_filter``
        only those outputs are returned (unbatched, only those are fetched)."""
        batcher = (
            self._batchers.get((servable.name, servable.version, runner.key))
            if (self._batchers)
            else None
        )
        start = time.perf_counter()
        if batcher is not None:
            outputs = batcher.submit(inputs).result()
            if output_filter:
                outputs = {alias: outputs[alias] for alias in output_filter}
        else:
            outputs = runner.run(inputs, output_filter)
        self._runtime(
            (servable.name, str(servable.version), api, "TF2"),
            (time.perf_counter() - start) * 1e6,
        )
        return outputs

    def predict_on(
        self,
        servable: Servable,
        signature_name: str,
        inputs: dict[str, np.ndarray],
        output_filter: Sequence[str] = (),
    ) -> dict[str, np.ndarray]:
        """Predict on a given servable (no resolution or request metrics; used by warmup)."""
        runner = servable.runner(signature_name)
        runner.check_inputs(inputs)
        if output_filter:
            runner.check_output_filter(output_filter)
        return self._run(servable, runner, inputs, "Predict", output_filter)

    def classify_on(
        self, servable: Servable, signature_name: str, examples: Sequence[bytes]
    ) -> ClassifyResult:
        runner = examples_runner(servable, signature_name)
        alias = examples_signature(runner, CLASSIFY_METHOD, self._check_method)
        outputs = self._run(servable, runner, {alias: examples_array(examples)}, "Classify")
        return classify_result(outputs, len(examples))

    def regress_on(
        self, servable: Servable, signature_name: str, examples: Sequence[bytes]
    ) -> np.ndarray:
        runner = examples_runner(servable, signature_name)
        alias = examples_signature(runner, REGRESS_METHOD, self._check_method)
        outputs = self._run(servable, runner, {alias: examples_array(examples)}, "Regress")
        return regress_result(outputs, len(examples))

    # -- requests ---------------------------------------------------------------------------
    def _finish(
        self,
        api: str,
        spec: RequestSpec,
        version: str,
        code: grpc.StatusCode,
        start: float,
        entrypoint: str,
    ) -> None:
        # A request's model name is the client's to choose: only models in the config get
        # their own series, every other name shares one, so the label set stays bounded.
        name = spec.name if self.manager.serves(spec.name) else UNKNOWN_MODEL
        self._count((name, version, code.name))
        self._latency((name, version, api, entrypoint), (time.perf_counter() - start) * 1e6)

    def predict(
        self,
        spec: RequestSpec,
        inputs: dict[str, np.ndarray],
        output_filter: Sequence[str] = (),
        *,
        entrypoint: str = "GRPC",
    ) -> tuple[int, dict[str, np.ndarray]]:
        """Run ``spec.signature_name`` on ``inputs``; (version served, outputs)."""
        return self._serve(
            "Predict",
            spec,
            entrypoint,
            lambda servable: self.predict_on(servable, spec.signature_name, inputs, output_filter),
        )

    def _examples_call(
        self,
        api: str,
        spec: RequestSpec,
        examples: Sequence[bytes],
        entrypoint: str,
        fn: Callable[[Servable, str, Sequence[bytes]], object],
    ) -> tuple[int, object]:
        return self._serve(
            api,
            spec,
            entrypoint,
            lambda servable: fn(servable, spec.signature_name, examples),
            examples=examples,
        )

    def _serve(
        self,
        api: str,
        spec: RequestSpec,
        entrypoint: str,
        run: Callable[[Servable], _T],
        examples: Sequence[bytes] | None = None,
    ) -> tuple[int, _T]:
        """One request: acquire the servable, ``run`` it, release; count and time it
        (``request_count`` / ``request_latency`` with the version served, or "" when none)."""
        start = time.perf_counter()
        version = ""
        code = grpc.StatusCode.OK
        try:
            if examples is not None and not examples:
                raise ServingError.invalid_argument("Input is empty.")
            servable = self.manager.acquire(spec.name, spec.version, spec.label)
            version = str(servable.version)
            if examples is not None:
                key = (spec.name, version)
                self.metrics.request_example_counts.observe(key, len(examples))
                self.metrics.request_example_count_total.inc(key, len(examples))
            try:
                return servable.version, run(servable)
            finally:
                servable.release()
        except ServingError as err:
            code = err.code
            raise
        except BaseException:
            code = grpc.StatusCode.INTERNAL
            raise
        finally:
            self._finish(api, spec, version, code, start, entrypoint)

    def classify(
        self, spec: RequestSpec, examples: Sequence[bytes], *, entrypoint: str = "GRPC"
    ) -> tuple[int, ClassifyResult]:
        """Classify serialized tf.Examples; (version served, classes/scores)."""
        return self._examples_call(  # type: ignore[return-value]
            "Classify", spec, examples, entrypoint, self.classify_on
        )

    def regress(
        self, spec: RequestSpec, examples: Sequence[bytes], *, entrypoint: str = "GRPC"
    ) -> tuple[int, np.ndarray]:
        """Regress serialized tf.Examples; (version served, one float per example)."""
        return self._examples_call(  # type: ignore[return-value]
            "Regress", spec, examples, entrypoint, self.regress_on
        )

    def multi_inference(
        self,
        tasks: Sequence[tuple[RequestSpec, str]],
        examples: Sequence[bytes],
        *,
        entrypoint: str = "GRPC",
    ) -> tuple[int, list[ClassifyResult | np.ndarray]]:
        """Run several classify/regress signatures of one model version on the same examples.

        ``tasks`` are (spec, method_name); all must name the same model; the first task's
        version/label chooses the servable (TF Serving ignores the others').
        """
        if not tasks:
            raise ServingError.invalid_argument(
                "MultiInferenceRequest must contain at least one task"
            )
        first = tasks[0][0]
        seen: set[str] = set()
        for spec, method in tasks:
            if not spec.name:
                raise ServingError.invalid_argument("Found ModelSpec with an empty model name.")
            if spec.name != first.name:
                raise ServingError.invalid_argument(
                    "All ModelSpecs in a MultiInferenceRequest must access the same model name."
                )
            if spec.signature_name in seen:
                raise ServingError.invalid_argument(
                    f"Duplicate evaluation of signature: {spec.signature_name}"
                )
            seen.add(spec.signature_name)
        check = self._check_method

        def run_all(servable: Servable, _sig: str, exs: Sequence[bytes]) -> object:
            # As TF Serving: the first task's spec picks the version; every task is checked
            # before any runs.
            for spec, method in tasks:
                runner = servable.runners.get(spec.signature_name)
                if runner is None:
                    raise ServingError.invalid_argument(
                        f"Requested signature not found in model graph: {spec.signature_name}"
                    )
                if method not in (CLASSIFY_METHOD, REGRESS_METHOD):
                    raise ServingError(
                        grpc.StatusCode.UNIMPLEMENTED,
                        f"Unsupported signature method_name: {method}",
                    )
                examples_signature(runner, method, check)
            results: list[ClassifyResult | np.ndarray] = []
            for spec, method in tasks:
                if method == CLASSIFY_METHOD:
                    results.append(self.classify_on(servable, spec.signature_name, exs))
                else:
                    results.append(self.regress_on(servable, spec.signature_name, exs))
            return results

        return self._examples_call(  # type: ignore[return-value]
            "MultiInference", first, examples, entrypoint, run_all
        )

    def get_model_metadata(
        self, spec: RequestSpec, fields: Sequence[str] = ("signature_def",)
    ) -> tuple[int, get_model_metadata_pb2.SignatureDefMap]:
        """(version, SignatureDefMap) — TF Serving supports only the signature_def field."""
        if not fields:
            raise ServingError.invalid_argument(
                "GetModelMetadataRequest must specify at least one metadata_field"
            )
        for name in fields:
            if name != "signature_def":
                raise ServingError.invalid_argument(f"Metadata field {name} is not supported")
        with self.manager.acquired(spec.name, spec.version, spec.label) as servable:
            return servable.version, servable.metadata()

    def input_specs(self, spec: RequestSpec) -> tuple[int, dict[str, InputSpec]]:
        """(version, {alias: InputSpec}) of a signature — what REST needs to type JSON values."""
        with self.manager.acquired(spec.name, spec.version, spec.label) as servable:
            return servable.version, dict(servable.runner(spec.signature_name).inputs)

    def get_model_status(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> list[VersionStatus]:
        return self.manager.status(name, version, label)
