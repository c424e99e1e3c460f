"""Every export module declares an explicit, truthful ``__all__``."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import tfsuite.export

MODULES = sorted(
    m.name
    for m in pkgutil.iter_modules(tfsuite.export.__path__)
    if not m.name.startswith("examples") and m.name != "__init__"
)


@pytest.mark.parametrize("name", MODULES)
def test_module_all_is_explicit_and_resolves(name: str) -> None:
    module = importlib.import_module(f"tfsuite.export.{name}")
    exported = getattr(module, "__all__", None)
    assert exported, f"tfsuite.export.{name} has no __all__"
    missing = [attr for attr in exported if not hasattr(module, attr)]
    assert not missing, missing
    assert len(set(exported)) == len(exported)
