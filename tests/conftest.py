"""Suite-wide test settings. Package-specific fixtures live in tests/<package>/conftest.py."""

from __future__ import annotations

import os

# Keep TensorFlow's C++ start-up chatter out of test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


# --- bundled example models (engineer "examples"); built lazily, once per session -------------
from pathlib import Path as _Path
from typing import TYPE_CHECKING as _TYPE_CHECKING

import pytest as _pytest

if _TYPE_CHECKING:
    from tfsuite.export.examples import ClassifierFiles


@_pytest.fixture(scope="session")
def examples_root(tmp_path_factory: _pytest.TempPathFactory) -> _Path:
    """The (initially empty) directory the example models are built into, on demand."""
    return tmp_path_factory.mktemp("examples")


@_pytest.fixture(scope="session")
def detector_pb(examples_root: _Path) -> _Path:
    """Frozen GraphDef of ``ssd_mobilenet_v2_tiny`` (input ``image_tensor``, OD API outputs)."""
    from tfsuite.export.examples import build_detector

    return build_detector(examples_root)


@_pytest.fixture(scope="session")
def classifier_example_files(examples_root: _Path) -> ClassifierFiles:
    """``mobilenet_v2`` as frozen graph and SavedModel (built together, once)."""
    from tfsuite.export.examples import build_classifier

    return build_classifier(examples_root)


@_pytest.fixture(scope="session")
def classifier_pb(classifier_example_files: ClassifierFiles) -> _Path:
    """Frozen GraphDef of ``mobilenet_v2`` (Placeholder ``input`` -> node ``probabilities``)."""
    return classifier_example_files.frozen_graph


@_pytest.fixture(scope="session")
def classifier_saved_model(classifier_example_files: ClassifierFiles) -> _Path:
    """SavedModel dir of ``mobilenet_v2`` (serving_default: ``input`` -> ``probabilities``)."""
    return classifier_example_files.saved_model


@_pytest.fixture(scope="session")
def examples_dir(
    examples_root: _Path, detector_pb: _Path, classifier_example_files: ClassifierFiles
) -> _Path:
    """A directory holding both example models, as ``write_examples`` lays them out."""
    return examples_root


# --- exported model base paths (engineer "export"); built once per session --------------------
def _exported_base(source: _Path, name: str, tmp_path_factory: _pytest.TempPathFactory) -> _Path:
    """``<tmp>/models/<name>`` exported with the default variants (1/2 built, 3/4 TF-TRT skipped)."""
    from tfsuite.export.api import export_variants

    base = tmp_path_factory.mktemp("models") / name
    manifest = export_variants(source, base, progress=False)
    # Fail here, once, rather than in every test that serves these versions.
    assert [v.status for v in manifest.variants[:2]] == ["ok", "ok"], manifest.variants[:2]
    return base


@_pytest.fixture(scope="session")
def detector_base(detector_pb: _Path, tmp_path_factory: _pytest.TempPathFactory) -> _Path:
    """Base path of the example detector: 1 original, 2 weight_quant (3/4 TF-TRT recorded skipped)."""
    return _exported_base(detector_pb, "ssd_mobilenet_v2_tiny", tmp_path_factory)


@_pytest.fixture(scope="session")
def classifier_base(classifier_pb: _Path, tmp_path_factory: _pytest.TempPathFactory) -> _Path:
    """Base path of the example classifier: 1 original, 2 weight_quant (3/4 TF-TRT recorded skipped)."""
    return _exported_base(classifier_pb, "mobilenet_v2", tmp_path_factory)
