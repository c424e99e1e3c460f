"""Synthetic, deterministic benchmark inputs shaped and typed from a model signature.

The batch dimension is always the case's batch size; other dynamic dimensions come from
``--input-shape name:1x300x300x3`` or, for uint8 image inputs (detectors), a 300x300x3 default.
Anything else that is dynamic is a usage error naming the input and the dims.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tfsuite.loadtest.offline.errors import BenchUsageError

__all__ = [
    "DEFAULT_IMAGE_HW",
    "InputSpec",
    "parse_batch_sizes",
    "parse_input_shapes",
    "resolve_shape",
    "synthetic_inputs",
]

#: Seed 000's detectors are fed 300x300 images when the graph leaves H and W open.
DEFAULT_IMAGE_HW = (300, 300)


@dataclass(frozen=True)
class InputSpec:
    """One signature input as the bench needs it."""

    name: str
    """Signature key, e.g. ``input`` or ``image_tensor``."""
    dtype: str
    """numpy dtype name, e.g. ``float32``, ``uint8``."""
    shape: tuple[int | None, ...]
    """Static shape from the signature; None marks a dynamic dim."""


def parse_batch_sizes(text: str | Iterable[int]) -> list[int]:
    """``"1,8,32"`` -> ``[1, 8, 32]``; anything that is not a positive integer is a usage error."""
    items = (
        [s.strip() for s in text.split(",")] if isinstance(text, str) else [str(s) for s in text]
    )
    sizes: list[int] = []
    for item in items:
        if not item.isdigit() or int(item) <= 0:
            raise BenchUsageError(
                f"batch size {item!r} is not a positive integer; use e.g. --batch-sizes 1,8,32"
            )
        if int(item) not in sizes:
            sizes.append(int(item))
    if not sizes:
        raise BenchUsageError("no batch sizes given; use e.g. --batch-sizes 1,8,32")
    return sizes


def parse_input_shapes(items: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """``["image_tensor:1x300x300x3"]`` -> ``{"image_tensor": (1, 300, 300, 3)}``."""
    shapes: dict[str, tuple[int, ...]] = {}
    for item in items:
        name, sep, dims = item.rpartition(":")
        parts = dims.lower().split("x")
        if not sep or not name or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise BenchUsageError(
                f"--input-shape {item!r} is not NAME:DxDx...; use e.g. --input-shape image_tensor:1x300x300x3"
            )
        shapes[name] = tuple(int(p) for p in parts)
    return shapes


def resolve_shape(
    spec: InputSpec, batch_size: int, overrides: Mapping[str, tuple[int, ...]]
) -> tuple[int, ...]:
    """The concrete shape to feed for ``spec`` at ``batch_size``."""
    given = overrides.get(spec.name)
    if given is not None:
        if spec.shape and len(given) != len(spec.shape):
            raise BenchUsageError(
                f"--input-shape for {spec.name!r} has {len(given)} dims but the signature has "
                f"{len(spec.shape)} ({_fmt(spec.shape)})"
            )
        # The batch dim is always the case's batch size; the user's first dim is just a placeholder.
        return (batch_size, *given[1:]) if given else given
    if not spec.shape:
        return ()
    dims: list[int | None] = [batch_size, *spec.shape[1:]]
    if spec.dtype == "uint8" and len(dims) == 4:
        h, w = DEFAULT_IMAGE_HW
        dims = [batch_size, dims[1] or h, dims[2] or w, dims[3] or 3]
    missing = [i for i, d in enumerate(dims) if d is None]
    if missing:
        example = "x".join(str(d or "N") for d in [1, *spec.shape[1:]])
        raise BenchUsageError(
            f"cannot infer the shape of input {spec.name!r} ({_fmt(spec.shape)}): dims "
            f"{', '.join(map(str, missing))} are dynamic; pass --input-shape {spec.name}:{example} "
            "with N replaced by sizes"
        )
    return tuple(int(d) for d in dims if d is not None)


def synthetic_inputs(
    specs: Sequence[InputSpec],
    batch_size: int,
    overrides: Mapping[str, tuple[int, ...]] | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Deterministic random inputs (same seed -> same bytes) for one case."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = resolve_shape(spec, batch_size, overrides or {})
        dtype = np.dtype(spec.dtype) if spec.dtype != "string" else np.dtype(object)
        if dtype == np.uint8:
            out[spec.name] = rng.integers(0, 256, size=shape, dtype=np.uint8)
        elif np.issubdtype(dtype, np.floating):
            # Image-like values in [0, 1): well inside every activation's comfortable range.
            out[spec.name] = rng.random(size=shape, dtype=np.float32).astype(dtype)
        elif np.issubdtype(dtype, np.integer):
            out[spec.name] = rng.integers(0, 10, size=shape).astype(dtype)
        elif dtype == np.bool_:
            out[spec.name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            raise BenchUsageError(
                f"input {spec.name!r} has dtype {spec.dtype}, which the bench cannot synthesise; "
                "benchmark a signature with numeric inputs"
            )
    return out


def _fmt(shape: Sequence[int | None]) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"
