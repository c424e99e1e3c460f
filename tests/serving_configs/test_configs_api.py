"""The package surface: explicit ``__all__`` everywhere, and no TensorFlow runtime at import."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

MODULES = [
    "tfsuite.serving_configs.errors",
    "tfsuite.serving_configs.textproto",
    "tfsuite.serving_configs.project_protos",
    "tfsuite.serving_configs.model_config",
    "tfsuite.serving_configs.batching",
    "tfsuite.serving_configs.monitoring",
    "tfsuite.serving_configs.warmup",
    "tfsuite.serving_configs.bundle",
    "tfsuite.serving_configs.cli",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__, name
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == []


def test_configs_do_not_import_tensorflow_runtime() -> None:
    # `tfsuite configs` and the config parsers must not pay TensorFlow's ~3 s start-up;
    # only writing/reading warmup records imports it (lazily).
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in MODULES)
        + "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
