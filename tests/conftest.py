"""Suite-wide test settings. Package-specific fixtures live in tests/<package>/conftest.py."""

from __future__ import annotations

import os

# Keep TensorFlow's C++ start-up chatter out of test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


# --- bundled example models (engineer "examples"); built lazily, once per session -------------
from pathlib import Path as _Path

import pytest as _pytest


@_pytest.fixture(scope="session")
def examples_dir(tmp_path_factory: _pytest.TempPathFactory) -> _Path:
    """A directory holding both example models (``write_examples``), built once per session."""
    from tfsuite.export.examples import write_examples

    out = tmp_path_factory.mktemp("examples")
    write_examples(out)
    return out


@_pytest.fixture(scope="session")
def detector_pb(examples_dir: _Path) -> _Path:
    """Frozen GraphDef of ``ssd_mobilenet_v2_tiny`` (input ``image_tensor``, OD API outputs)."""
    from tfsuite.export.examples import detector_path

    return detector_path(examples_dir)


@_pytest.fixture(scope="session")
def classifier_pb(examples_dir: _Path) -> _Path:
    """Frozen GraphDef of ``mobilenet_v2`` (Placeholder ``input`` -> node ``probabilities``)."""
    from tfsuite.export.examples import classifier_files

    return classifier_files(examples_dir).frozen_graph


@_pytest.fixture(scope="session")
def classifier_saved_model(examples_dir: _Path) -> _Path:
    """SavedModel dir of ``mobilenet_v2`` (serving_default: ``input`` -> ``probabilities``)."""
    from tfsuite.export.examples import classifier_files

    return classifier_files(examples_dir).saved_model
