"""Class id -> name: the COCO names built in, or a label map file (pbtxt, json or txt).

* ``.pbtxt``: the Object Detection API's ``item { id: 1 name: "..." display_name: "..." }``
  (display_name wins). Parsed with a small regex reader: the StringIntLabelMap proto ships
  with the OD API, which the suite does not depend on.
* ``.json``: ``{"1": "person", ...}``, ``[{"id": 1, "name": "person"}, ...]`` or a plain list
  of names (index = position + ``first_id``).
* anything else: one name per line (line N is id N + ``first_id``), or ``ID NAME`` /
  ``ID: NAME`` lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tfsuite.errors import UsageError

__all__ = ["COCO_LABELS", "LabelMap", "coco_label_map", "index_label_map", "load_label_map"]

# COCO 2017 category ids (1-based, 90 ids with gaps); the gaps carry the names from the
# original 91-category list so that every id a detector emits has a readable name.
# fmt: off
COCO_LABELS: dict[int, str] = dict(
    enumerate(
        [
            "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck",
            "boat", "traffic light", "fire hydrant", "street sign", "stop sign",
            "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
            "elephant", "bear", "zebra", "giraffe", "hat", "backpack", "umbrella", "shoe",
            "eye glasses", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
            "sports ball", "kite", "baseball bat", "baseball glove", "skateboard",
            "surfboard", "tennis racket", "bottle", "plate", "wine glass", "cup", "fork",
            "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli",
            "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
            "bed", "mirror", "dining table", "window", "desk", "toilet", "door", "tv",
            "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven",
            "toaster", "sink", "refrigerator", "blender", "book", "clock", "vase",
            "scissors", "teddy bear", "hair drier", "toothbrush",
        ],
        start=1,
    )
)
# fmt: on


@dataclass(frozen=True)
class LabelMap:
    """Names by class id; unknown ids read as ``<prefix><id>``."""

    names: Mapping[int, str] = field(default_factory=dict)
    prefix: str = "class_"
    source: str = "built-in"
    """Where the names came from (shown in the run summary)."""

    def __getitem__(self, class_id: int) -> str:
        return self.names.get(int(class_id), f"{self.prefix}{int(class_id)}")

    def __len__(self) -> int:
        return len(self.names)


def coco_label_map() -> LabelMap:
    return LabelMap(COCO_LABELS, prefix="id_", source="COCO (built in)")


def index_label_map() -> LabelMap:
    """No names: classes print as ``class_<index>`` (ImageNet-style index labels)."""
    return LabelMap({}, prefix="class_", source="class indices")


_PBTXT_ITEM = re.compile(r"item\s*\{(.*?)\}", re.DOTALL)
_PBTXT_FIELD = re.compile(r"(\w+)\s*:\s*(?:\"((?:[^\"\\]|\\.)*)\"|'((?:[^'\\]|\\.)*)'|(-?\d+))")


def _from_pbtxt(text: str) -> dict[int, str]:
    names: dict[int, str] = {}
    for body in _PBTXT_ITEM.findall(text):
        fields = {m[0]: (m[1] or m[2] or m[3]) for m in _PBTXT_FIELD.findall(body)}
        if "id" not in fields:
            raise ValueError(f"item without an id: {{{body.strip()}}}")
        names[int(fields["id"])] = fields.get("display_name") or fields.get("name") or ""
    if not names:
        raise ValueError("no `item { id: ... name: ... }` entries")
    return names


def _from_json(text: str, first_id: int) -> dict[int, str]:
    data = json.loads(text)
    if isinstance(data, dict):
        return {int(k): str(v) for k, v in data.items()}
    if isinstance(data, list) and all(isinstance(x, dict) for x in data):
        return {int(x["id"]): str(x.get("display_name") or x["name"]) for x in data}
    if isinstance(data, list):
        return {i + first_id: str(x) for i, x in enumerate(data)}
    raise ValueError("expected an object {id: name}, a list of {id, name} or a list of names")


_ID_LINE = re.compile(r"^\s*(\d+)\s*[:\s]\s*(.+?)\s*$")


def _from_txt(text: str, first_id: int) -> dict[int, str]:
    lines = [line.rstrip("\r") for line in text.splitlines()]
    while lines and not lines[-1].strip():
        lines.pop()
    matches = [_ID_LINE.match(line) for line in lines if line.strip()]
    if lines and all(matches):
        return {int(m[1]): m[2] for m in matches if m}
    return {i + first_id: line.strip() for i, line in enumerate(lines)}


def load_label_map(path: Path | str, first_id: int = 1) -> LabelMap:
    """Read a label map file; ``first_id`` numbers plain name lists (1 for COCO-style
    detectors, 0 for classifiers)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read label map {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix in (".pbtxt", ".pbtext"):
            names = _from_pbtxt(text)
        elif path.suffix == ".json":
            names = _from_json(text, first_id)
        else:
            names = _from_txt(text, first_id)
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"label map {path} does not parse: {exc}") from None
    return LabelMap(names, source=str(path))
