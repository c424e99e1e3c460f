"""Every server module has an ``__all__`` whose names exist (the public surface is explicit)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import tfsuite.server

#: Every module of the package, found on disk: a new module is checked without listing it.
MODULES = sorted(
    f"tfsuite.server.{m.name}"
    for m in pkgutil.iter_modules(tfsuite.server.__path__)
    if not m.name.startswith("_")
)


def test_the_package_modules_are_found() -> None:
    assert {"tfsuite.server.app", "tfsuite.server.core", "tfsuite.server.rest"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__, f"{name} has an empty __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == []


def test_options_have_a_doc_per_flag() -> None:
    from tfsuite.server.options import IGNORED_FLAGS, ServerOptions

    fields = ServerOptions.model_fields
    assert all(f.description for f in fields.values())
    assert IGNORED_FLAGS <= set(fields)
    defaults = ServerOptions()
    assert (defaults.port, defaults.rest_api_port, defaults.model_name) == (8500, 0, "default")
    assert (defaults.file_system_poll_wait_seconds, defaults.max_num_load_retries) == (1, 5)
    assert defaults.host == "127.0.0.1" and defaults.enable_model_warmup is True
