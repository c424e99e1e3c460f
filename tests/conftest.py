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


# --- exported model base paths (engineer "export"); built once per session --------------------
@_pytest.fixture(scope="session")
def detector_base(detector_pb: _Path, tmp_path_factory: _pytest.TempPathFactory) -> _Path:
    """Base path of the example detector: 1 original, 2 weight_quant (3/4 TF-TRT recorded skipped)."""
    from tfsuite.export.api import export_variants

    base = tmp_path_factory.mktemp("models") / "ssd_mobilenet_v2_tiny"
    export_variants(detector_pb, base, progress=False)
    return base


@_pytest.fixture(scope="session")
def classifier_base(classifier_pb: _Path, tmp_path_factory: _pytest.TempPathFactory) -> _Path:
    """Base path of the example classifier: 1 original, 2 weight_quant (3/4 TF-TRT recorded skipped)."""
    from tfsuite.export.api import export_variants

    base = tmp_path_factory.mktemp("models") / "mobilenet_v2"
    export_variants(classifier_pb, base, progress=False)
    return base
