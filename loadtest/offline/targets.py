"""What to benchmark: the model variants of a base path (from ``variants.json`` when present).

A base path without ``variants.json`` (a plain TF Serving layout) still works: every integer
version directory becomes a target named ``v<N>``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from tfsuite.export.manifest import VariantsManifest
from tfsuite.loadtest.offline.errors import BenchUsageError
from tfsuite.loadtest.offline.inputs import InputSpec

__all__ = ["BenchTarget", "VariantFacts", "safe_name", "targets_from_base_path"]

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def safe_name(name: str, what: str = "model name") -> str:
    """Names become file names under --out; refuse anything that could escape it."""
    if not _SAFE.match(name) or ".." in name:
        raise BenchUsageError(
            f"{what} {name!r} may only use letters, digits, '_', '-' and '.'; rename it"
        )
    return name


@dataclass
class VariantFacts:
    """What one model variant is (from ``variants.json``): shared by targets and table rows."""

    model: str
    variant: str
    version: int
    precision: str = ""
    size_bytes: int | None = None
    nodes: int | None = None
    """Total graph nodes (sum of variants.json's node_count by op type)."""
    conversion_seconds: float | None = None
    """From variants.json: time the exporter took to build this variant."""

    def facts(self) -> dict[str, Any]:
        """These fields only, to start a row of this variant: ``CaseResult(**t.facts(), ...)``."""
        return {f.name: getattr(self, f.name) for f in fields(VariantFacts)}


@dataclass(kw_only=True)
class BenchTarget(VariantFacts):
    """One model variant (a version directory) to run on every backend and batch size."""

    base_path: Path
    status: str = "ok"
    """The exporter's status; anything but ``ok`` makes every case of this target ``skipped``."""
    reason: str = ""
    node_count: dict[str, int] = field(default_factory=dict)
    inputs: list[InputSpec] = field(default_factory=list)
    """Signature inputs from variants.json (empty when there is no manifest)."""

    @property
    def version_dir(self) -> Path:
        return self.base_path / str(self.version)


def targets_from_base_path(
    base_path: Path,
    *,
    versions: Sequence[int] | None = None,
    variants: Sequence[str] | None = None,
    model_name: str | None = None,
) -> list[BenchTarget]:
    if not base_path.is_dir():
        raise BenchUsageError(
            f"--base-path {base_path} is not a directory; point it at a model base path"
        )
    manifest = VariantsManifest.load_if_exists(base_path)
    if manifest is None:
        found = sorted(int(p.name) for p in base_path.iterdir() if p.is_dir() and p.name.isdigit())
        if not found:
            raise BenchUsageError(
                f"{base_path} has neither variants.json nor version directories; export a model first "
                "(tfsuite export) or pass the base path that holds 1/, 2/, ..."
            )
        name = safe_name(model_name or base_path.name)
        all_targets = [
            BenchTarget(model=name, base_path=base_path, variant=f"v{v}", version=v) for v in found
        ]
    else:
        name = safe_name(model_name or manifest.model_name)
        all_targets = [
            BenchTarget(
                model=name,
                base_path=base_path,
                variant=rec.variant,
                version=rec.version,
                precision=rec.precision,
                status=rec.status,
                reason=rec.reason,
                size_bytes=rec.size_bytes,
                nodes=sum(rec.node_count.values()) if rec.node_count else None,
                conversion_seconds=rec.conversion_seconds,
                node_count=dict(rec.node_count),
                inputs=[InputSpec(i.name, i.dtype, tuple(i.shape)) for i in manifest.inputs],
            )
            for rec in manifest.variants
        ]
    if versions:
        known = {t.version for t in all_targets}
        for v in versions:
            if v not in known:
                raise BenchUsageError(
                    f"version {v} is not in {base_path} (has {', '.join(map(str, sorted(known)))})"
                )
        return [t for t in all_targets if t.version in set(versions)]
    if variants:
        known_names = [t.variant for t in all_targets]
        for v in variants:
            if v not in known_names:
                raise BenchUsageError(
                    f"variant {v!r} is not in {base_path} (has {', '.join(known_names)}); "
                    "export it first or pick another"
                )
        return [t for t in all_targets if t.variant in set(variants)]
    return all_targets
