"""Every name in the server-core modules' ``__all__`` exists (the public surface is explicit)."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "tfsuite.server.options",
    "tfsuite.server.errors",
    "tfsuite.server.servable",
    "tfsuite.server.model_manager",
    "tfsuite.server.batching",
    "tfsuite.server.metrics",
    "tfsuite.server.dataplane",
    "tfsuite.server.example_inference",
    "tfsuite.server.core",
]


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
