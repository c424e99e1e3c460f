"""Detections in pixel coordinates, and the COCO detection-results JSON writer.

COCO results format (what ``pycocotools`` ``loadRes`` reads): a list of
``{"image_id": int, "category_id": int, "bbox": [x, y, width, height], "score": float}``
with the box in pixels of the original image.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "Detection",
    "coco_records",
    "detections_from_outputs",
    "image_id_for",
]


@dataclass(frozen=True)
class Detection:
    """One box of one image, in pixel coordinates of the original image."""

    class_id: int
    label: str
    score: float
    box: tuple[float, float, float, float]
    """x1, y1, x2, y2 in pixels (x right, y down)."""

    def describe(self) -> str:
        x1, y1, x2, y2 = (round(v) for v in self.box)
        return f"{self.label} at [{x1},{y1},{x2},{y2}] {self.score:.3f}"

    def coco(self, image_id: int) -> dict[str, object]:
        x1, y1, x2, y2 = self.box
        return {
            "image_id": image_id,
            "category_id": self.class_id,
            "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
            "score": round(self.score, 5),
        }


def detections_from_outputs(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    num: float | None,
    width: int,
    height: int,
    labels: object,
    min_score: float,
) -> list[Detection]:
    """One image's OD API outputs (normalized ymin, xmin, ymax, xmax) -> pixel detections."""
    n = len(scores) if num is None else min(int(num), len(scores))
    keep = np.nonzero(scores[:n] >= min_score)[0]
    if keep.size == 0:
        return []
    b = np.clip(np.asarray(boxes[keep], dtype=np.float64), 0.0, 1.0)
    scale = np.array([height, width, height, width], dtype=np.float64)
    pix = b * scale  # ymin, xmin, ymax, xmax
    out = []
    for (y1, x1, y2, x2), s, c in zip(pix.tolist(), scores[keep].tolist(), classes[keep].tolist()):
        cid = round(c)
        out.append(Detection(cid, labels[cid], float(s), (x1, y1, x2, y2)))  # type: ignore[index]
    return out


def image_id_for(path: Path, index: int) -> int:
    """COCO image ids are ints: the file name's number (``000000397133.jpg``) if it is one,
    else the image's position in the run."""
    m = re.fullmatch(r"\D*?(\d+)", path.stem)
    return int(m[1]) if m else index


def coco_records(items: Iterable[tuple[int, Sequence[Detection]]]) -> list[dict[str, object]]:
    return [d.coco(image_id) for image_id, dets in items for d in dets]
