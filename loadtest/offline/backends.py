"""Inference backends of the offline bench: one interface, one class per backend.

Like perf_analyzer's client backends, the runner only knows :class:`Backend`:
``load()`` once per model variant, ``prepare(feeds)`` once per batch size (move synthetic
inputs into the backend's own tensor type, outside the timed region), then ``infer(prepared)``
per timed iteration, which returns only when the outputs are materialised on the host.

- ``tf``: the SavedModel's ``serving_default`` signature in-process.
- ``onnxruntime``: the SavedModel converted by tf2onnx (``from_function`` on the signature,
  in-process), cached as ``<cache>/<model>_v<version>_<hash>.onnx``; CPU provider, plus
  TensorRT/CUDA providers where onnxruntime offers them.
- ``tf-trt``: needs a TensorFlow built with TensorRT (TF <= 2.17 / NGC containers); elsewhere
  every case is recorded ``skipped`` with the reason.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tfsuite.loadtest.offline.errors import BenchUsageError
from tfsuite.loadtest.offline.inputs import InputSpec
from tfsuite.loadtest.offline.onnx import (
    ONNX_OPSET,
    OnnxConversion,
    convert_in_subprocess,
    convert_saved_model,
)

__all__ = [
    "BACKENDS",
    "Backend",
    "OnnxRuntimeBackend",
    "TFBackend",
    "TFTRTBackend",
    "check_backends",
    "saved_model_inputs",
]

log = logging.getLogger(__name__)

SIGNATURE_KEY = "serving_default"


class Backend(ABC):
    """One way of running a SavedModel version directory."""

    name: ClassVar[str]
    #: pip packages the backend imports (named in the error when one is missing).
    packages: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        model_dir: Path,
        *,
        model: str,
        version: int,
        threads: int | None,
        cache_dir: Path,
        convert_timeout_s: float | None = None,
    ) -> None:
        self.model_dir = model_dir
        self.model = model
        self.version = version
        self.threads = threads
        self.cache_dir = cache_dir
        #: Convert in a subprocess killed after this many seconds; None converts in-process.
        self.convert_timeout_s = convert_timeout_s
        self.inputs: list[InputSpec] = []
        #: Seconds spent converting the model for this backend (0 when cached or not needed).
        self.conversion_seconds: float | None = None
        #: Free-form facts for bench.json (providers, onnx path, threads applied, ...).
        self.details: dict[str, Any] = {}

    @classmethod
    def missing_packages(cls) -> list[str]:
        return [p for p in cls.packages if importlib.util.find_spec(p.replace("-", "_")) is None]

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this backend cannot run on this machine at all (cases become ``skipped``)."""
        return None

    @abstractmethod
    def load(self) -> None:
        """Load (and convert, if needed) the model; fills ``inputs``."""

    @abstractmethod
    def prepare(self, feeds: Mapping[str, np.ndarray]) -> Any:
        """Backend-native inputs for ``infer``; called outside the timed region."""

    @abstractmethod
    def infer(self, prepared: Any) -> None:
        """One inference with outputs materialised on the host."""

    def close(self) -> None:
        """Release the model."""


def _signature_inputs(signature: Any) -> list[InputSpec]:
    specs = signature.structured_input_signature[1]
    return [
        InputSpec(
            name=key,
            dtype="string"
            if spec.dtype.name == "string"
            else spec.dtype.as_numpy_dtype().dtype.name,
            shape=tuple(spec.shape.as_list()) if spec.shape.rank is not None else (),
        )
        for key, spec in sorted(specs.items())
    ]


def _load_signature(model_dir: Path) -> tuple[Any, Any]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(model_dir))
    if SIGNATURE_KEY not in loaded.signatures:
        raise RuntimeError(
            f"{model_dir} has no {SIGNATURE_KEY!r} signature (has: {', '.join(loaded.signatures) or 'none'})"
        )
    return loaded, loaded.signatures[SIGNATURE_KEY]


def saved_model_inputs(model_dir: Path) -> list[InputSpec]:
    """The ``serving_default`` inputs of a SavedModel version directory."""
    _, fn = _load_signature(model_dir)
    return _signature_inputs(fn)


class TFBackend(Backend):
    """The SavedModel signature, called in-process on eager tensors."""

    name = "tf"
    packages = ("tensorflow",)

    def load(self) -> None:
        import tensorflow as tf

        if self.threads:
            # Set up front by run_bench; only record whether TF really runs with them.
            self.details["threads_applied"] = (
                tf.config.threading.get_intra_op_parallelism_threads() == self.threads
            )
        self._loaded, self._fn = _load_signature(self.model_dir)
        self.inputs = _signature_inputs(self._fn)
        self.conversion_seconds = 0.0

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> dict[str, Any]:
        import tensorflow as tf

        return {k: tf.constant(v) for k, v in feeds.items()}

    def infer(self, prepared: dict[str, Any]) -> None:
        for tensor in self._fn(**prepared).values():
            tensor.numpy()

    def close(self) -> None:
        self._fn = None
        self._loaded = None


def _dir_digest(model_dir: Path) -> str:
    """Identity of a SavedModel's contents for the .onnx cache (graph + variables index)."""
    digest = hashlib.sha256()
    for name in ("saved_model.pb", "variables/variables.index"):
        path = model_dir / name
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


class OnnxRuntimeBackend(Backend):
    """tf2onnx conversion (cached) + an onnxruntime InferenceSession."""

    name = "onnxruntime"
    packages = ("onnxruntime", "tf2onnx", "onnx")
    #: Best first; only those onnxruntime reports as available are used.
    PREFERRED_PROVIDERS = (
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    )

    #: Whether onnxruntime's intra-op threads spin while idle (onnxruntime's default: yes).
    spinning: bool = True

    def onnx_path(self) -> Path:
        return self.cache_dir / f"{self.model}_v{self.version}_{_dir_digest(self.model_dir)}.onnx"

    def convert(self) -> Path:
        """Convert the version dir to ONNX once; later runs reuse the cached file."""
        target = self.onnx_path()
        cached = OnnxConversion.load(target) if target.exists() else None
        if cached is not None:
            self.conversion_seconds = 0.0
            conversion = cached
        else:
            if self.convert_timeout_s:
                conversion = convert_in_subprocess(
                    self.model_dir, target, ONNX_OPSET, self.convert_timeout_s
                )
            else:
                conversion = convert_saved_model(self.model_dir, target, ONNX_OPSET)
            self.conversion_seconds = conversion.seconds
        self.details.update(
            onnx_cached=cached is not None,
            onnx_converted_in="subprocess" if self.convert_timeout_s else "process",
            onnx_max_abs_error_vs_tf=conversion.max_abs_error_vs_tf,
            onnx_dequantize_rewrites=conversion.dequantize_rewrites,
            tf2onnx=conversion.tf2onnx,
        )
        return target

    def load(self) -> None:
        import onnxruntime as ort

        path = self.convert()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not self.spinning:
            # Spinning workers lose their time slices to other processes on a shared CPU.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if self.threads:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        available = set(ort.get_available_providers())
        providers = [p for p in self.PREFERRED_PROVIDERS if p in available]
        self._session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        self.details.update(
            onnx_path=str(path),
            providers=self._session.get_providers(),
            opset=ONNX_OPSET,
            intra_op_threads=self.threads or "onnxruntime default",
            allow_spinning=self.spinning,
        )
        type_names = {
            "tensor(float)": "float32",
            "tensor(uint8)": "uint8",
            "tensor(int32)": "int32",
            "tensor(int64)": "int64",
            "tensor(double)": "float64",
            "tensor(float16)": "float16",
            "tensor(bool)": "bool",
            "tensor(int8)": "int8",
        }
        self._names: dict[str, str] = {}
        self.inputs = []
        for node in self._session.get_inputs():
            key = node.name.split(":")[0]
            self._names[key] = node.name
            shape = tuple(d if isinstance(d, int) and d > 0 else None for d in node.shape)
            self.inputs.append(
                InputSpec(name=key, dtype=type_names.get(node.type, "float32"), shape=shape)
            )

    def prepare(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {self._names[k]: np.ascontiguousarray(v) for k, v in feeds.items()}

    def infer(self, prepared: dict[str, np.ndarray]) -> None:
        self._session.run(None, prepared)

    def close(self) -> None:
        self._session = None


class TFTRTBackend(TFBackend):
    """TF-TRT: SavedModels already converted by TF-TRT run as-is; others are converted (FP16).

    Only reachable where TensorFlow is built with TensorRT; never exercised on this project's
    CPU-only machines (cases are recorded ``skipped`` there).
    """

    name = "tf-trt"
    packages = ("tensorflow",)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        import tensorflow as tf

        if not tf.sysconfig.get_build_info().get("is_tensorrt_build", False):
            return (
                f"TensorFlow {tf.__version__} is built without TensorRT (pip wheels >= 2.18 have none); "
                "run tf-trt cases in the NGC TensorFlow container or TF 2.17 + TensorRT 8.6"
            )
        return None

    def load(self) -> None:
        from tensorflow.python.compiler.tensorrt import trt_convert as trt

        target = self.cache_dir / f"{self.model}_v{self.version}_tftrt_fp16"
        if not target.exists():
            start = time.perf_counter()
            converter = trt.TrtGraphConverterV2(
                input_saved_model_dir=str(self.model_dir),
                conversion_params=trt.TrtConversionParams(precision_mode=trt.TrtPrecisionMode.FP16),
            )
            converter.convert()
            converter.save(str(target))
            self.conversion_seconds = time.perf_counter() - start
        self.model_dir = target
        super().load()


BACKENDS: dict[str, type[Backend]] = {
    b.name: b for b in (TFBackend, OnnxRuntimeBackend, TFTRTBackend)
}


def check_backends(names: list[str]) -> list[type[Backend]]:
    """Resolve backend names; unknown or not-installed ones are usage errors naming the fix."""
    resolved: list[type[Backend]] = []
    for name in names:
        cls = BACKENDS.get(name)
        if cls is None:
            raise BenchUsageError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
        missing = cls.missing_packages()
        if missing:
            raise BenchUsageError(
                f"backend {name!r} is not installed: pip install {' '.join(missing)}"
            )
        resolved.append(cls)
    return resolved
