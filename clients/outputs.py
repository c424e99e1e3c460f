"""What the CLIs do with each answered batch: print, draw, and collect JSON results."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tfsuite.atomic import atomic_path, atomic_write_json
from tfsuite.clients.coco import Detection, detections_from_outputs, image_id_for
from tfsuite.clients.images import LoadedImage, draw_boxes
from tfsuite.clients.labels import LabelMap
from tfsuite.errors import UsageError

__all__ = ["DetectionWriter", "TopKWriter", "output_stems", "unique_image_ids"]

log = logging.getLogger(__name__)

Echo = Callable[[str], None]


def unique_image_ids(paths: Sequence[Path]) -> list[int]:
    """COCO image ids from the file names' numbers, or positions if those are not unique."""
    ids = [image_id_for(p, i) for i, p in enumerate(paths)]
    return ids if len(set(ids)) == len(ids) else list(range(len(paths)))


def output_stems(paths: Sequence[Path]) -> list[str]:
    """Per-image output file stems: the image's stem, made unique if two share one."""
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        n = seen.get(p.stem, 0)
        seen[p.stem] = n + 1
        names.append(p.stem if n == 0 else f"{p.stem}_{n}")
    return names


def _write_image_atomic(path: Path, bgr: np.ndarray) -> None:
    # The temp name keeps the suffix: OpenCV picks the encoder from it.
    with atomic_path(path, suffix=path.suffix) as tmp:
        if not cv2.imwrite(str(tmp), bgr):
            raise UsageError(f"cannot write {path} (OpenCV has no writer for {path.suffix!r})")


def _refuse_overwriting_inputs(inputs: Sequence[Path], outputs: Sequence[Path]) -> None:
    """An annotated copy must never replace the image it was drawn from."""
    sources = {p.resolve() for p in inputs}
    clash = next((o for o in outputs if o.resolve() in sources), None)
    if clash is not None:
        raise UsageError(
            f"--draw would overwrite the input image {clash}; choose another directory"
        )


def _draw_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    return suffix if suffix in (".jpg", ".jpeg", ".png", ".bmp") else ".png"


class DetectionWriter:
    """Turns detector outputs into pixel boxes; prints, draws and collects them."""

    def __init__(
        self,
        paths: Sequence[Path],
        labels: LabelMap,
        min_score: float,
        *,
        draw_dir: Path | None = None,
        out_dir: Path | None = None,
        echo: Echo = print,
    ) -> None:
        self.labels = labels
        self.min_score = min_score
        self.draw_dir = draw_dir
        self.out_dir = out_dir
        self.echo = echo
        self.image_ids = unique_image_ids(paths)
        self.stems = output_stems(paths)
        self.results: list[tuple[int, list[Detection]]] = []
        if draw_dir is not None:
            _refuse_overwriting_inputs(paths, [self._draw_path(i, p) for i, p in enumerate(paths)])

    def _draw_path(self, index: int, path: Path) -> Path:
        assert self.draw_dir is not None
        return self.draw_dir / f"{self.stems[index]}{_draw_suffix(path)}"

    @property
    def draws(self) -> bool:
        """Whether the reader must keep the original images."""
        return self.draw_dir is not None

    def on_batch(self, batch: list[LoadedImage], out: dict[str, np.ndarray]) -> None:
        num = out.get("num_detections")
        for row, item in enumerate(batch):
            w, h = item.original_size
            dets = detections_from_outputs(
                out["detection_boxes"][row],
                out["detection_scores"][row],
                out["detection_classes"][row],
                None if num is None else float(num[row]),
                w,
                h,
                self.labels,
                self.min_score,
            )
            image_id = self.image_ids[item.index]
            self.results.append((image_id, dets))
            plural = "" if len(dets) == 1 else "s"
            lines = [f"{item.path} ({w}x{h}): {len(dets)} detection{plural}"]
            lines.extend(f"  {d.describe()}" for d in dets)
            self.echo("\n".join(lines))  # one write per image, not per box
            stem = self.stems[item.index]
            if self.out_dir is not None:
                records = [d.coco(image_id) for d in dets]
                atomic_write_json(self.out_dir / f"{stem}.json", records, indent=None)
            if self.draw_dir is not None and item.original is not None:
                boxes = [(d.box, f"{d.label} {d.score:.2f}", d.class_id) for d in dets]
                target = self._draw_path(item.index, item.path)
                _write_image_atomic(target, draw_boxes(item.original, boxes))

    def write_coco(self, path: Path) -> None:
        records = [d.coco(i) for i, dets in self.results for d in dets]
        atomic_write_json(path, records, indent=None)
        log.info("wrote %d detections of %d images to %s", len(records), len(self.results), path)


class TopKWriter:
    """Prints the top-k classes of each image and collects them for a JSON file."""

    def __init__(self, output: str, labels: LabelMap, top_k: int, *, echo: Echo = print) -> None:
        self.output = output
        self.labels = labels
        self.top_k = top_k
        self.echo = echo
        self.results: list[dict[str, Any]] = []

    def on_batch(self, batch: list[LoadedImage], out: dict[str, np.ndarray]) -> None:
        scores = np.asarray(out[self.output]).reshape(len(batch), -1)
        k = min(self.top_k, scores.shape[1])
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        for row, item in enumerate(batch):
            picks = [(int(c), self.labels[int(c)], float(scores[row, c])) for c in top[row]]
            lines = [f"{item.path}:"]
            ranked = enumerate(picks, start=1)
            lines.extend(f"  {rank}. {name} {score:.4f}" for rank, (_, name, score) in ranked)
            self.echo("\n".join(lines))
            self.results.append(
                {
                    "image": str(item.path),
                    "top_k": [{"class_id": c, "label": n, "score": s} for c, n, s in picks],
                }
            )

    def write_json(self, path: Path) -> None:
        atomic_write_json(path, self.results, indent=None)
