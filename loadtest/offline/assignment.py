"""``assignment.csv``: seed 003's list of models to benchmark, one model per line.

Columns (header required; names are case-insensitive, seed 003's names accepted as aliases):

    model         path of the source model: frozen graph .pb, SavedModel dir, or an exported
                  base path (with variants.json)                       (alias: tasks, source)
    batch_sizes   "1,8,32"                                             (alias: batch_size, batch)
    variants      "original,weight_quant"; seed 003's precisions map   (alias: precision)
                  FP32->original, FP16->trt_fp16, INT8->trt_int8
    name          optional model name (default: the file/dir stem)
    backends      optional "tf,onnxruntime" (default: --backends)
    input_shape   optional "name:1x300x300x3[;name2:...]"

Relative paths are relative to the CSV file; a bare name (seed 003's Tasks column, e.g.
``resnet18``) also finds ``<name>.pb`` or ``model/<name>.pb`` next to it. Any mistake is one error naming the line.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from tfsuite.loadtest.offline.errors import BenchUsageError
from tfsuite.loadtest.offline.inputs import parse_batch_sizes, parse_input_shapes
from tfsuite.loadtest.offline.targets import safe_name

__all__ = ["ASSIGNMENT_COLUMNS", "Assignment", "parse_assignment"]

_ALIASES: dict[str, str] = {
    "model": "model",
    "tasks": "model",
    "task": "model",
    "source": "model",
    "batch_sizes": "batch_sizes",
    "batch_size": "batch_sizes",
    "batch": "batch_sizes",
    "variants": "variants",
    "precision": "variants",
    "precisions": "variants",
    "name": "name",
    "backends": "backends",
    "input_shape": "input_shape",
}
ASSIGNMENT_COLUMNS = ("model", "batch_sizes", "variants", "name", "backends", "input_shape")

#: seed 003's precision column -> the exporter's variant names.
_PRECISIONS = {"fp32": "original", "fp16": "trt_fp16", "int8": "trt_int8"}


@dataclass
class Assignment:
    """One line of assignment.csv."""

    line: int
    source: Path
    name: str
    batch_sizes: list[int]
    variants: list[str]
    backends: list[str] | None = None
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


def _split(text: str) -> list[str]:
    return [s.strip() for s in text.replace(";", ",").split(",") if s.strip()]


def _find_model(folder: Path, text: str) -> Path | None:
    """The path as given (relative to the CSV), else seed 003's layout: a bare model name in
    the Tasks column for ``model/<name>.pb`` next to assignment.csv."""
    given = Path(text).expanduser()
    candidates = [given if given.is_absolute() else folder / given]
    if not given.is_absolute() and not given.suffix and len(given.parts) == 1:
        candidates += [
            folder / f"{text}.pb",
            folder / "model" / f"{text}.pb",
            folder / "model" / text,
        ]
    return next((c for c in candidates if c.exists()), None)


def parse_assignment(path: Path) -> list[Assignment]:
    if not path.is_file():
        raise BenchUsageError(f"assignment file {path} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise BenchUsageError(
                f"{path}:1: empty file; expected a header line: model,batch_sizes,variants"
            ) from None
        columns: list[str] = []
        for raw in header:
            key = raw.strip().lower().replace(" ", "_").replace("/", "_")
            if key not in _ALIASES:
                known = ", ".join(ASSIGNMENT_COLUMNS)
                raise BenchUsageError(
                    f"{path}:1: unknown column {raw.strip()!r}; known columns: {known}"
                )
            columns.append(_ALIASES[key])
        if "model" not in columns:
            raise BenchUsageError(
                f"{path}:1: no 'model' column; the header needs model,batch_sizes,variants"
            )
        out: list[Assignment] = []
        names: set[str] = set()
        for line_no, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values) or values[0].lstrip().startswith("#"):
                continue
            if len(values) > len(columns):
                raise BenchUsageError(
                    f"{path}:{line_no}: {len(values)} fields but the header has {len(columns)}; "
                    'quote lists with commas, e.g. "1,8,32"'
                )
            cells = {c: v.strip() for c, v in zip(columns, values, strict=False)}
            where = f"{path}:{line_no}"
            if not cells.get("model"):
                raise BenchUsageError(f"{where}: the model column is empty")
            source = _find_model(path.parent, cells["model"])
            if source is None:
                raise BenchUsageError(
                    f"{where}: model {cells['model']!r} not found "
                    f"(looked for {path.parent / cells['model']} and model/{cells['model']}.pb)"
                )
            try:
                batch_sizes = parse_batch_sizes(cells.get("batch_sizes") or "1")
                shapes = parse_input_shapes(_split(cells.get("input_shape", "")))
                name = safe_name(cells.get("name") or source.stem)
            except BenchUsageError as exc:
                raise BenchUsageError(f"{where}: {exc}") from None
            if name in names:
                raise BenchUsageError(
                    f"{where}: model name {name!r} is used twice; add a name column"
                )
            names.add(name)
            variants = [
                _PRECISIONS.get(v.lower(), v) for v in _split(cells.get("variants") or "original")
            ]
            backends = _split(cells["backends"]) if cells.get("backends") else None
            out.append(Assignment(line_no, source, name, batch_sizes, variants, backends, shapes))
    if not out:
        raise BenchUsageError(f"{path}: no models listed below the header")
    return out
