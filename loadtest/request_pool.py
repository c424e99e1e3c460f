"""Pre-encoded Predict requests for load generators: the engine, Locust users, benchmarks.

A load generator must not spend its CPU encoding tensors while it measures, so every
request is serialized once, before the load starts, for every model version it will be
sent to (the version or label is part of the request's ``model_spec``). Inputs come from

* ``--inputs DIR``: ``*.npy`` (the signature's single input), ``*.npz`` (one array per input
  alias) or images (``.jpg``/``.png``/...; resized to the input's fixed size, or to the first
  image's size, so that requests batch on the server), grouped ``batch_size`` per request;
* or synthetic tensors built from ``GetModelMetadata``: the signature's dtypes and shapes,
  the batch dimension set to ``batch_size`` and unknown dimensions to
  :data:`SYNTHETIC_SIDE`; uint8 inputs get structured images, float inputs seeded noise.

The same pool also gives the fixed inputs for output agreement (:attr:`RequestPool.inputs`).
No TensorFlow here.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfsuite.clients.rpcs import RPC, predict_rpc, predict_rpc_encoded
from tfsuite.clients.specs import ModelMetadata, SignatureSpec
from tfsuite.errors import UsageError
from tfsuite.export.agreement import synthetic_images

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_POOL_REQUESTS",
    "SYNTHETIC_REQUESTS",
    "SYNTHETIC_SIDE",
    "RequestPool",
]

#: Distinct synthetic requests per pool (cycled).
SYNTHETIC_REQUESTS = 8
#: Unknown (-1) non-batch dimensions of a synthetic input.
SYNTHETIC_SIDE = 224
#: At most this many requests are read from --inputs (each is held encoded in memory).
MAX_POOL_REQUESTS = 256
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})

Inputs = dict[str, np.ndarray]


@dataclass
class RequestPool:
    """Fixed Predict inputs, ``batch_size`` rows each, encoded once per model version."""

    model: str
    inputs: list[Inputs]
    """One ``{alias: array}`` per request (the arrays' first axis is the batch)."""
    batch_size: int
    signature: str | None = None
    source: str = "synthetic"
    """'synthetic' or the --inputs directory."""
    _encoded: dict[tuple[int | None, str | None], list[RPC[Any]]] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        if not self.inputs:
            raise UsageError("the request pool is empty")

    def rpcs(self, version: int | None = None, label: str | None = None) -> list[RPC[Any]]:
        """The pool's requests for one version (or label), serialized once and cached.

        Their parser keeps the raw ``PredictResponse`` (load generators only need its
        ``model_spec`` and size; the call hook reports both)."""
        key = (version, label)
        rpcs = self._encoded.get(key)
        if rpcs is None:
            rpcs = [
                predict_rpc_encoded(
                    predict_rpc(x, self.model, version, label, self.signature).request,
                    self.model,
                    version,
                    label,
                )
                for x in self.inputs
            ]
            self._encoded[key] = rpcs
        return rpcs

    def cycle(self, version: int | None = None, label: str | None = None) -> Any:
        """An endless iterator over :meth:`rpcs`."""
        return itertools.cycle(self.rpcs(version, label))

    @property
    def request_bytes(self) -> int:
        """Size of the first encoded request (they are alike)."""
        first = next(iter(self._encoded.values()), None) or self.rpcs()
        return first[0].request_bytes

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_metadata(
        cls,
        metadata: ModelMetadata,
        batch_size: int = 1,
        inputs_dir: Path | None = None,
        signature: str | None = None,
        *,
        seed: int = 0,
    ) -> RequestPool:
        """A pool for the model ``metadata`` describes (``GetModelMetadata``'s answer)."""
        if batch_size < 1:
            raise UsageError("--batch-size must be at least 1")
        try:
            sig = metadata.signature(signature)
        except KeyError:
            raise UsageError(
                f"model {metadata.name} has no signature {signature or 'serving_default'!r}; "
                f"it has {', '.join(sorted(metadata.signatures)) or 'none'}"
            ) from None
        if inputs_dir is None:
            inputs = synthetic_inputs(sig, batch_size, SYNTHETIC_REQUESTS, seed)
            return cls(metadata.name, inputs, batch_size, signature)
        inputs = inputs_from_dir(Path(inputs_dir), sig, batch_size)
        return cls(metadata.name, inputs, batch_size, signature, str(inputs_dir))


def _shape(spec_shape: Sequence[int | None] | None, batch_size: int, alias: str) -> list[int]:
    if spec_shape is None:
        raise UsageError(f"input {alias!r} has no known rank; give real inputs with --inputs DIR")
    dims = [d if d is not None and d >= 0 else SYNTHETIC_SIDE for d in spec_shape]
    if dims:
        dims[0] = batch_size
    return dims


def synthetic_inputs(sig: SignatureSpec, batch_size: int, count: int, seed: int) -> list[Inputs]:
    """``count`` seeded requests shaped and typed as the signature says."""
    rng = np.random.default_rng(seed)
    requests: list[Inputs] = []
    for i in range(count):
        request: Inputs = {}
        for alias, spec in sig.inputs.items():
            dims = _shape(spec.shape, batch_size, alias)
            if spec.dtype == "uint8" and len(dims) == 4:
                request[alias] = synthetic_images(dims[0], dims[1], dims[2], dims[3], seed + i)
            elif spec.dtype.startswith("float") or spec.dtype == "bfloat16":
                dtype = np.float32 if spec.dtype == "bfloat16" else np.dtype(spec.dtype)
                request[alias] = rng.random(dims, dtype=np.float64).astype(dtype)
            elif spec.dtype in ("int8", "int16", "int32", "int64", "uint8", "uint16", "bool"):
                request[alias] = rng.integers(0, 2, size=dims).astype(spec.dtype)
            elif spec.dtype == "string":
                request[alias] = np.full(dims, b"", dtype=object)
            else:
                raise UsageError(
                    f"input {alias!r} takes {spec.dtype}; synthetic inputs cannot be made "
                    "for it, give real ones with --inputs DIR"
                )
        requests.append(request)
    return requests


def inputs_from_dir(directory: Path, sig: SignatureSpec, batch_size: int) -> list[Inputs]:
    """Requests read from ``directory`` (see the module docstring for the file kinds)."""
    if not directory.is_dir():
        raise UsageError(f"--inputs {directory}: not a directory")
    files = sorted(p for p in directory.iterdir() if p.is_file())
    arrays = [p for p in files if p.suffix in (".npy", ".npz")]
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if arrays:
        rows = [_array_rows(p, sig) for p in arrays[: MAX_POOL_REQUESTS * batch_size]]
    elif images:
        rows = _image_rows(images[: MAX_POOL_REQUESTS * batch_size], sig)
    else:
        raise UsageError(
            f"--inputs {directory}: no .npy, .npz or image files in it "
            f"(image suffixes: {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    requests = [
        {a: np.concatenate([r[a] for r in group]) for a in group[0]}
        for group in _groups(rows, batch_size)
    ]
    return requests


def _groups(rows: list[Inputs], batch_size: int) -> list[list[Inputs]]:
    if len(rows) < batch_size:
        rows = list(itertools.islice(itertools.cycle(rows), batch_size))
    return [rows[i : i + batch_size] for i in range(0, len(rows) - batch_size + 1, batch_size)]


def _array_rows(path: Path, sig: SignatureSpec) -> Inputs:
    """One file -> ``{alias: array}`` with a leading batch axis of its own rows."""
    try:
        loaded = np.load(path, allow_pickle=False)  # never unpickle user files
    except (OSError, ValueError) as exc:
        raise UsageError(f"--inputs {path}: not a numpy file ({exc})") from None
    if isinstance(loaded, np.ndarray):
        if len(sig.inputs) != 1:
            raise UsageError(
                f"--inputs {path}: a .npy file feeds one input, the signature has "
                f"{', '.join(sig.inputs)}; use .npz files keyed by input alias"
            )
        (alias,) = sig.inputs
        arrays = {alias: loaded}
    else:
        arrays = {k: loaded[k] for k in loaded.files}
        missing = sorted(set(sig.inputs) - set(arrays))
        if missing:
            raise UsageError(f"--inputs {path}: no array for input(s) {', '.join(missing)}")
    out: Inputs = {}
    for alias, spec in sig.inputs.items():
        arr = arrays[alias]
        if spec.shape is not None and arr.ndim == len(spec.shape) - 1:
            arr = arr[None]  # one example without its batch axis
        out[alias] = arr.astype(spec.dtype) if spec.dtype not in ("string",) else arr
    return out


def _image_rows(paths: list[Path], sig: SignatureSpec) -> list[Inputs]:
    from tfsuite.clients.images import ImageReader
    from tfsuite.clients.pipeline import plan_input

    plan = plan_input(sig, sig.name, None, "mobilenet")
    spec = sig.inputs[plan.alias]
    fixed = spec.shape is not None and len(spec.shape) == 4 and None not in spec.shape[1:3]
    resize = (int(spec.shape[2]), int(spec.shape[1])) if fixed else None  # type: ignore[index]
    rows: list[Inputs] = []
    with ImageReader(paths, resize) as reader:
        for item in reader:
            if item.pixels is None:
                raise UsageError(f"--inputs {item.path}: unreadable image ({item.error})")
            pixels = item.pixels
            if rows and pixels.shape != rows[0][plan.alias].shape[1:]:
                import cv2

                height, width = rows[0][plan.alias].shape[1:3]
                pixels = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_LINEAR)
            rows.append({plan.alias: plan.tensor([pixels])})
    return rows
