"""Shared fixtures of the serving-configs tests: a variants.json as `tfsuite export` writes it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tfsuite.export.manifest import VariantRecord, VariantsManifest


def _make_manifest(
    model_name: str, statuses: dict[str, tuple[int, str]], source_format: str = "frozen_graph"
) -> VariantsManifest:
    return VariantsManifest(
        model_name=model_name,
        source="/src/model.pb",
        source_format=source_format,
        source_sha256="0" * 64,
        tf_version="2.21.0",
        variants=[
            VariantRecord(version=version, variant=name, precision="fp32", status=status)
            for name, (version, status) in statuses.items()
        ],
    )


@pytest.fixture(scope="session")
def make_manifest() -> Callable[..., VariantsManifest]:
    """``make_manifest(model_name, {variant: (version, status)})`` -> VariantsManifest."""
    return _make_manifest
