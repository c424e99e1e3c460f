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


# --- `tfsuite serve` as a process, launched like tensorflow_model_server ---------------------
import queue as _queue
import re as _re
import subprocess as _subprocess
import sys as _sys
import threading as _threading
from collections.abc import Iterator as _Iterator
from contextlib import contextmanager as _contextmanager
from dataclasses import dataclass as _dataclass
from dataclasses import field as _field

SERVE_START_TIMEOUT = 120.0
_GRPC_LINE = _re.compile(r"Running gRPC ModelServer at (?P<host>[\w.:]+):(?P<port>\d+) \.\.\.")
_REST_LINE = _re.compile(r"Exporting HTTP/REST API at:(?P<host>[\w.:]+):(?P<port>\d+) \.\.\.")


@_dataclass
class ServeProcess:
    """A running ``tfsuite serve``; ports read from its TF-Serving-style start-up lines."""

    proc: _subprocess.Popen[str]
    grpc_port: int
    rest_port: int | None
    output: list[str] = _field(default_factory=list)
    """Every line it printed up to the start-up lines."""


@_contextmanager
def _launch_serve(
    flags: list[str], *, address_space_bytes: int | None = None
) -> _Iterator[ServeProcess]:
    """``address_space_bytes``: run the server under that ``RLIMIT_AS`` (a real memory bound:
    an allocation beyond it fails in the server instead of the machine swapping or OOM-ing)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "200"}

    def limit_memory() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (address_space_bytes, address_space_bytes))

    proc = _subprocess.Popen(
        [_sys.executable, "-m", "tfsuite", "serve", *flags],
        stdout=_subprocess.PIPE,
        stderr=_subprocess.STDOUT,
        text=True,
        env=env,
        preexec_fn=limit_memory if address_space_bytes is not None else None,  # noqa: PLW1509 (setrlimit only: the limit must hold from exec on)
    )
    lines: _queue.Queue[str] = _queue.Queue()

    def pump() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.put(line)
        lines.put("")  # EOF

    _threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    grpc_port = rest_port = None
    wants_rest = not any(f in ("--rest_api_port=0",) for f in flags)
    try:
        while grpc_port is None or (wants_rest and rest_port is None):
            line = lines.get(timeout=SERVE_START_TIMEOUT)  # waits on output, not on the clock
            assert line, "tfsuite serve exited early:\n" + "".join(seen)
            seen.append(line)
            if m := _GRPC_LINE.search(line):
                grpc_port = int(m["port"])
            if m := _REST_LINE.search(line):
                rest_port = int(m["port"])
        yield ServeProcess(proc, grpc_port, rest_port, seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@_pytest.fixture
def launch_serve() -> object:
    """``with launch_serve(["--port=-1", ...]) as served:`` runs ``python -m tfsuite serve``."""
    return _launch_serve


@_pytest.fixture(scope="session")
def launch_serve_session() -> object:
    """:func:`launch_serve` for session-scoped fixtures (one server shared by many tests)."""
    return _launch_serve
