"""The bundled example models, built in-process from seeded weights (no downloads).

- ``ssd_mobilenet_v2_tiny`` (``DETECTOR_NAME``): SSD detector, frozen GraphDef
  ``ssd_mobilenet_v2_tiny.pb`` with the Object Detection API interface
  (see ``tfsuite.export.examples_detector``).
- ``mobilenet_v2`` (``CLASSIFIER_NAME``): MobileNetV2 classifier, frozen GraphDef
  ``mobilenet_v2.pb`` and SavedModel ``mobilenet_v2/`` (see ``tfsuite.export.examples_classifier``).

Every file is written atomically (temp + rename) and every build is deterministic: the same
TensorFlow build writes the same bytes, so re-running ``tfsuite examples`` is idempotent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import click

from tfsuite.errors import UsageError
from tfsuite.export.paths import check_output_path

__all__ = [
    "CLASSIFIER_INPUT",
    "CLASSIFIER_NAME",
    "CLASSIFIER_OUTPUT",
    "DETECTOR_INPUT",
    "DETECTOR_NAME",
    "DETECTOR_OUTPUTS",
    "ClassifierFiles",
    "ExampleArtifact",
    "build_classifier",
    "build_detector",
    "classifier_files",
    "detector_path",
    "examples",
    "write_examples",
]

log = logging.getLogger(__name__)

DETECTOR_NAME = "ssd_mobilenet_v2_tiny"
CLASSIFIER_NAME = "mobilenet_v2"
#: Placeholder of the detector's frozen graph: uint8 [None, None, None, 3].
DETECTOR_INPUT = "image_tensor"
#: Output nodes of the detector, in the Object Detection API's order.
DETECTOR_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
#: Placeholder / signature input key of the classifier: float32 [None, 224, 224, 3] in [-1, 1].
CLASSIFIER_INPUT = "input"
#: Output node / signature output key of the classifier: float32 [None, 1000] softmax.
CLASSIFIER_OUTPUT = "probabilities"
MODEL_KINDS = {"detector": DETECTOR_NAME, "classifier": CLASSIFIER_NAME}


@dataclass(frozen=True)
class ClassifierFiles:
    """Where ``build_classifier`` wrote the classifier."""

    frozen_graph: Path
    """Frozen GraphDef: Placeholder ``input`` float32 [None,224,224,3] -> node ``probabilities``."""
    saved_model: Path
    """SavedModel dir; ``serving_default``: input key ``input``, output key ``probabilities``."""


@dataclass(frozen=True)
class ExampleArtifact:
    """One written file or directory, as listed by ``tfsuite examples``."""

    name: str
    """Model name (``DETECTOR_NAME`` or ``CLASSIFIER_NAME``)."""
    format: str
    """``frozen_graph`` or ``saved_model``."""
    path: Path
    inputs: str
    """Human-readable input spec, e.g. ``image_tensor uint8 [?,?,?,3]``."""
    outputs: str
    """Human-readable output names."""


def detector_path(out_dir: Path) -> Path:
    """Where ``build_detector(out_dir)`` writes the detector's frozen graph."""
    return Path(out_dir) / f"{DETECTOR_NAME}.pb"


def classifier_files(out_dir: Path) -> ClassifierFiles:
    """Where ``build_classifier(out_dir)`` writes the classifier (without building it)."""
    out_dir = Path(out_dir)
    return ClassifierFiles(
        frozen_graph=out_dir / f"{CLASSIFIER_NAME}.pb", saved_model=out_dir / CLASSIFIER_NAME
    )


def _check_out_dir(out_dir: Path) -> Path:
    return check_output_path(out_dir, "--out", directory=True)


def build_detector(out_dir: Path) -> Path:
    """Build ``ssd_mobilenet_v2_tiny`` and write its frozen GraphDef into ``out_dir``."""
    from tfsuite.atomic import atomic_write_bytes
    from tfsuite.export.examples_detector import detector_graph_def
    from tfsuite.export.examples_graph import graph_def_bytes

    path = detector_path(_check_out_dir(out_dir))
    started = time.perf_counter()
    atomic_write_bytes(path, graph_def_bytes(detector_graph_def()))
    log.debug("wrote %s in %.1f s", path, time.perf_counter() - started)
    return path


def build_classifier(out_dir: Path) -> ClassifierFiles:
    """Build ``mobilenet_v2`` and write its frozen GraphDef and SavedModel into ``out_dir``."""
    import tensorflow as tf

    from tfsuite.atomic import atomic_write_bytes, atomic_write_dir
    from tfsuite.export.examples_classifier import ClassifierModule, classifier_graph_def
    from tfsuite.export.examples_graph import graph_def_bytes

    files = classifier_files(_check_out_dir(out_dir))
    started = time.perf_counter()
    module = ClassifierModule()
    atomic_write_bytes(files.frozen_graph, graph_def_bytes(classifier_graph_def(module)))

    def save(tmp: Path) -> None:
        tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.concrete})

    atomic_write_dir(files.saved_model, save)
    log.debug("wrote %s in %.1f s", files, time.perf_counter() - started)
    return files


def _artifacts(name: str, built: Path | ClassifierFiles) -> list[ExampleArtifact]:
    if isinstance(built, ClassifierFiles):
        inputs, outputs = "input float32 [?,224,224,3]", "probabilities float32 [?,1000]"
        return [
            ExampleArtifact(name, "frozen_graph", built.frozen_graph, inputs, outputs),
            ExampleArtifact(name, "saved_model", built.saved_model, inputs, outputs),
        ]
    return [
        ExampleArtifact(
            name,
            "frozen_graph",
            built,
            "image_tensor uint8 [?,?,?,3]",
            "detection_{boxes,scores,classes}, num_detections",
        )
    ]


def _build(kind: str, out: Path) -> list[ExampleArtifact]:
    if kind == "detector":
        return _artifacts(DETECTOR_NAME, build_detector(out))
    return _artifacts(CLASSIFIER_NAME, build_classifier(out))


def _selected(only: Iterable[str] | None) -> list[str]:
    kinds = list(MODEL_KINDS) if only is None else list(dict.fromkeys(only))
    unknown = [kind for kind in kinds if kind not in MODEL_KINDS]
    if unknown:
        choices = ", ".join(MODEL_KINDS)
        raise UsageError(f"unknown example model {unknown[0]!r}; choose from {choices}")
    return kinds


def write_examples(out: Path, only: Iterable[str] | None = None) -> dict[str, Path]:
    """Write the example models into ``out``; returns name -> main file (the frozen graphs).

    The classifier's SavedModel sits next to its frozen graph (``classifier_files(out)``).
    ``only`` limits the build to ``"detector"`` and/or ``"classifier"``.
    """
    out = _check_out_dir(out)
    written: dict[str, Path] = {}
    for kind in _selected(only):
        artifacts = _build(kind, out)
        written[artifacts[0].name] = artifacts[0].path
    return written


@click.command("examples")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Directory to write the models into (created if missing).",
)
@click.option(
    "--only",
    type=click.Choice(sorted(MODEL_KINDS)),
    default=None,
    help="Build only the detector or only the classifier.",
)
def examples(out: Path, only: str | None) -> None:
    """Write the bundled example models (SSD detector, MobileNetV2 classifier)."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from tfsuite.export.report import format_size
    from tfsuite.export.saving import dir_size

    out = _check_out_dir(out)
    kinds = _selected([only] if only else None)
    console = Console()
    artifacts: list[ExampleArtifact] = []
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as progress:
        overall = progress.add_task("example models", total=len(kinds))
        for kind in kinds:
            step = progress.add_task(f"building {MODEL_KINDS[kind]}", total=None)
            artifacts.extend(_build(kind, out))
            progress.update(step, total=1, completed=1, description=f"built {MODEL_KINDS[kind]}")
            progress.advance(overall)

    table = Table(title=f"example models in {out}")
    for column in ("name", "format", "path", "size", "inputs", "outputs"):
        table.add_column(column, overflow="fold")
    for item in artifacts:
        table.add_row(
            item.name,
            item.format,
            item.path.name,
            format_size(dir_size(item.path)),
            item.inputs,
            item.outputs,
        )
    console.print(table)
