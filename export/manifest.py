"""``<base>/variants.json``: the one contract export hands on to the rest of the suite.

Every requested variant is listed, including those that were skipped or failed; only
``status == "ok"`` variants have a version directory a server could load.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from tfsuite.atomic import atomic_write_json

__all__ = [
    "DEFAULT_VERSIONS",
    "MANIFEST_NAME",
    "TensorSpecInfo",
    "Validation",
    "VariantRecord",
    "VariantsManifest",
]

MANIFEST_NAME = "variants.json"

#: The design card's numbering; further variants take the following free numbers.
DEFAULT_VERSIONS: dict[str, int] = {
    "original": 1,
    "weight_quant": 2,
    "trt_fp16": 3,
    "trt_int8": 4,
}

Status = Literal["ok", "skipped", "failed"]


class TensorSpecInfo(BaseModel):
    """One signature input or output."""

    name: str = Field(description="Signature key (alias), e.g. 'image_tensor'; never with ':0'.")
    dtype: str = Field(description="numpy-style dtype name, e.g. 'uint8', 'float32', 'string'.")
    shape: list[int | None] = Field(description="Static shape; None marks a dynamic dimension.")


class Validation(BaseModel):
    """A variant compared with version 1 on the same fixed inputs."""

    passed: bool
    max_abs_error: float | None = Field(
        None, description="max |variant - original| over all float outputs"
    )
    max_rel_error: float | None = Field(None, description="max abs error / (max |original| + eps)")
    top1_agreement: float | None = Field(
        None, description="classifiers: share of inputs with the same argmax"
    )
    detection_agreement: float | None = Field(
        None, description="detectors: share of original detections matched (same class, IoU>=0.5)"
    )
    num_inputs: int = Field(0, description="how many fixed inputs were compared")
    tolerance: dict[str, float] = Field(default_factory=dict, description="the limits applied")
    detail: str = Field("", description="why it failed, when it did")


class VariantRecord(BaseModel):
    """One requested variant and what became of it."""

    version: int = Field(description="Version directory number under the base path.")
    variant: str = Field(description="Variant name, e.g. 'original', 'weight_quant', 'trt_fp16'.")
    precision: str = Field(
        description="'fp32', 'int8-weights', 'fp16-weights', 'fp16', 'int8', ..."
    )
    status: Status
    reason: str = Field("", description="Why it was skipped or failed, and what to do instead.")
    size_bytes: int | None = Field(None, description="Size on disk of the version directory.")
    content_sha256: str = Field(
        "",
        description="sha256 over the published version directory (file names and bytes); "
        "every re-run checks it, so a damaged version is reported, not called up to date.",
    )
    node_count: dict[str, int] = Field(default_factory=dict, description="Graph nodes by op type.")
    conversion_seconds: float | None = None
    validation: Validation | None = None
    source_sha256: str = ""
    tf_version: str = ""
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    options: dict[str, object] = Field(default_factory=dict, description="Builder options used.")

    @property
    def loadable(self) -> bool:
        return self.status == "ok"


class VariantsManifest(BaseModel):
    """The whole ``variants.json``."""

    schema_version: int = 1
    model_name: str
    source: str = Field(description="Path of the source model as given.")
    source_format: str = Field(description="'frozen_graph', 'saved_model' or 'keras'.")
    source_sha256: str
    tf_version: str
    kind: str = Field(
        "generic", description="'detector', 'classifier' or 'generic' (drives validation)."
    )
    inputs: list[TensorSpecInfo] = Field(default_factory=list)
    outputs: list[TensorSpecInfo] = Field(default_factory=list)
    variants: list[VariantRecord] = Field(default_factory=list)

    # -- queries -----------------------------------------------------------------------------
    def by_variant(self, name: str) -> VariantRecord | None:
        return next((v for v in self.variants if v.variant == name), None)

    def by_version(self, version: int) -> VariantRecord | None:
        return next((v for v in self.variants if v.version == version), None)

    def loadable(self) -> list[VariantRecord]:
        return [v for v in self.variants if v.status == "ok"]

    def version_labels(self) -> dict[str, int]:
        """Label -> version for every loadable variant (TF Serving's version_labels)."""
        return {v.variant: v.version for v in self.loadable()}

    def upsert(self, record: VariantRecord) -> None:
        self.variants = [v for v in self.variants if v.variant != record.variant]
        self.variants.append(record)
        self.variants.sort(key=lambda v: v.version)

    # -- files -------------------------------------------------------------------------------
    @classmethod
    def path_in(cls, base_path: str | os.PathLike[str]) -> Path:
        return Path(base_path) / MANIFEST_NAME

    @classmethod
    def load(cls, base_path: str | os.PathLike[str]) -> VariantsManifest:
        path = cls.path_in(base_path)
        return cls.model_validate_json(path.read_text())

    @classmethod
    def load_if_exists(cls, base_path: str | os.PathLike[str]) -> VariantsManifest | None:
        path = cls.path_in(base_path)
        return cls.load(base_path) if path.exists() else None

    def save(self, base_path: str | os.PathLike[str]) -> Path:
        """Write atomically (temp file + rename): a polling reader never sees half of it."""
        return atomic_write_json(self.path_in(base_path), self.model_dump(mode="json"))
