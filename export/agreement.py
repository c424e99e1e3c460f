"""Output agreement between two runs of a model on the same inputs: pure numpy, no TensorFlow.

Used by the exporter (a variant against the original, :mod:`tfsuite.export.validate`) and by
the load tests (a served version against the reference version), whose load-generator
processes never import TensorFlow.

Metrics (all recorded; which ones gate depends on the model kind):

* ``max_abs_error`` / ``max_rel_error`` over every float output (rel = abs / (max|orig| + eps));
  gates ``generic`` and ``classifier`` models.
* ``top1_agreement`` (classifiers): share of inputs whose argmax is the same.
* ``detection_agreement`` (detectors): share of the original's detections (score >= threshold)
  matched by a variant detection of the same class with IoU >= 0.5. Box order may legitimately
  change after quantization, so for detectors the errors are measured over matched pairs
  (box coordinates and scores, both in [0, 1]) and only the agreement gates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tfsuite.export.manifest import Validation

__all__ = [
    "DEFAULT_TOLERANCES",
    "DetectionMatch",
    "compare_outputs",
    "detection_agreement",
    "detection_match",
    "synthetic_images",
]

EPS = 1e-6
IOU_MATCH = 0.5
SCORE_THRESHOLD = 0.3

#: Per variant: upper bounds for errors, lower bounds for agreements. Overridable per call.
#: Eight-bit weights move logits by a few percent; fp16 by ~1e-3; rewrites should be exact-ish.
DEFAULT_TOLERANCES: dict[str, dict[str, float]] = {
    "original": {"max_rel_error": 1e-5, "top1_agreement": 1.0, "detection_agreement": 1.0},
    "optimized": {"max_rel_error": 1e-3, "top1_agreement": 1.0, "detection_agreement": 0.95},
    "fp16_weights": {"max_rel_error": 2e-2, "top1_agreement": 0.9, "detection_agreement": 0.9},
    "weight_quant": {"max_rel_error": 0.15, "top1_agreement": 0.75, "detection_agreement": 0.7},
    "trt_fp32": {"max_rel_error": 1e-3, "top1_agreement": 1.0, "detection_agreement": 0.95},
    "trt_fp16": {"max_rel_error": 2e-2, "top1_agreement": 0.9, "detection_agreement": 0.9},
    "trt_int8": {"max_rel_error": 0.15, "top1_agreement": 0.75, "detection_agreement": 0.7},
}


def synthetic_images(
    count: int, height: int, width: int, channels: int, seed: int = 0
) -> np.ndarray:
    """uint8 images with structure (gradients + rectangles), not white noise, reproducibly."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    images = np.empty((count, height, width, channels), np.uint8)
    for i in range(count):
        base = (xx * (i + 1) * 3 + yy * 2) % 256
        img = np.repeat(base[..., None], channels, axis=2).astype(np.float32)
        for _ in range(3):
            y0, x0 = rng.integers(0, max(1, height // 2)), rng.integers(0, max(1, width // 2))
            h, w = (
                rng.integers(height // 8 + 1, height // 2 + 2),
                rng.integers(width // 8 + 1, width // 2 + 2),
            )
            img[y0 : y0 + h, x0 : x0 + w] = rng.integers(0, 256, size=channels)
        images[i] = np.clip(img, 0, 255).astype(np.uint8)
    return images


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    y0, x0 = max(a[0], b[0]), max(a[1], b[1])
    y1, x1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, y1 - y0) * max(0.0, x1 - x0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class _Detections:
    boxes: np.ndarray
    classes: np.ndarray
    scores: np.ndarray


def _detections(outputs: Mapping[str, np.ndarray], image: int, threshold: float) -> _Detections:
    scores = outputs["detection_scores"][image]
    count = int(outputs["num_detections"][image]) if "num_detections" in outputs else len(scores)
    keep = np.nonzero(scores[:count] >= threshold)[0]
    return _Detections(
        outputs["detection_boxes"][image][keep],
        outputs["detection_classes"][image][keep],
        scores[keep],
    )


@dataclass(frozen=True)
class DetectionMatch:
    """Reference detections against a variant's, matched by class and IoU."""

    agreement: float
    """Share of reference detections (score >= threshold) matched: same class, IoU >= 0.5,
    each variant detection used once."""
    worst: float
    """Largest box-coordinate or score difference among the matched pairs."""
    score_drift: float
    """Largest score difference among the matched pairs."""


def detection_agreement(
    reference: Mapping[str, np.ndarray],
    variant: Mapping[str, np.ndarray],
    threshold: float = SCORE_THRESHOLD,
) -> tuple[float, float]:
    """Share of reference detections matched (same class, IoU >= 0.5, each used once), and the
    largest box-coordinate / score difference among the matched pairs."""
    match = detection_match(reference, variant, threshold)
    return match.agreement, match.worst


def detection_match(
    reference: Mapping[str, np.ndarray],
    variant: Mapping[str, np.ndarray],
    threshold: float = SCORE_THRESHOLD,
) -> DetectionMatch:
    """Match the reference's confident detections with the variant's (see DetectionMatch)."""
    total = matched = 0
    worst = drift = 0.0
    for image in range(len(reference["detection_scores"])):
        ref = _detections(reference, image, threshold)
        var = _detections(variant, image, threshold)
        used: set[int] = set()
        for box, cls, score in zip(ref.boxes, ref.classes, ref.scores):
            total += 1
            best, best_iou = -1, IOU_MATCH
            for j, (vbox, vcls) in enumerate(zip(var.boxes, var.classes)):
                iou = _iou(box, vbox) if j not in used and vcls == cls else 0.0
                if iou >= best_iou:
                    best, best_iou = j, iou
            if best >= 0:
                used.add(best)
                matched += 1
                score_delta = abs(float(var.scores[best] - score))
                drift = max(drift, score_delta)
                worst = max(worst, float(np.max(np.abs(var.boxes[best] - box))), score_delta)
    # No confident detections on either side is agreement; spurious new ones are not.
    if total == 0:
        extra = sum(
            len(_detections(variant, i, threshold).boxes)
            for i in range(len(variant["detection_scores"]))
        )
        return DetectionMatch(1.0 if extra == 0 else 0.0, 0.0, 0.0)
    return DetectionMatch(matched / total, worst, drift)


def compare_outputs(
    reference: Mapping[str, np.ndarray],
    variant: Mapping[str, np.ndarray],
    kind: str,
    tolerance: Mapping[str, float],
) -> Validation:
    """Compare one variant's outputs with the reference's under ``tolerance``."""
    missing = sorted(set(reference) - set(variant))
    if missing:
        return Validation(
            passed=False,
            detail=f"outputs missing from the variant: {', '.join(missing)}",
            tolerance=dict(tolerance),
        )
    max_abs = 0.0
    max_rel = 0.0
    for key, ref in reference.items():
        var = np.asarray(variant[key])
        if var.shape != ref.shape:
            return Validation(
                passed=False,
                detail=f"output {key!r} has shape {var.shape}, original {ref.shape}",
                tolerance=dict(tolerance),
            )
        if ref.dtype.kind != "f":
            continue
        diff = (
            float(np.max(np.abs(var.astype(np.float64) - ref.astype(np.float64))))
            if ref.size
            else 0.0
        )
        scale = float(np.max(np.abs(ref))) if ref.size else 0.0
        if not np.all(np.isfinite(var)):
            diff = float("inf")
        max_abs = max(max_abs, diff)
        max_rel = max(max_rel, diff / (scale + EPS))
    n = len(next(iter(reference.values()))) if reference else 0
    result = Validation(
        passed=True,
        max_abs_error=max_abs,
        max_rel_error=max_rel,
        num_inputs=n,
        tolerance=dict(tolerance),
    )
    problems: list[str] = []
    if kind == "detector" and {"detection_boxes", "detection_scores", "detection_classes"} <= set(
        reference
    ):
        # Detections may legitimately change order: errors are taken over matched pairs.
        agreement, worst = detection_agreement(reference, variant)
        result.detection_agreement = agreement
        result.max_abs_error = worst
        result.max_rel_error = worst  # boxes and scores live in [0, 1]
        if agreement < tolerance.get("detection_agreement", 0.0):
            problems.append(
                f"detection agreement {agreement:.2f} < {tolerance['detection_agreement']:.2f}"
            )
    else:
        if kind == "classifier":
            ref = next(iter(reference.values()))
            var = np.asarray(variant[next(iter(reference))])
            top1 = float(np.mean(np.argmax(ref, axis=-1) == np.argmax(var, axis=-1)))
            result.top1_agreement = top1
            if top1 < tolerance.get("top1_agreement", 0.0):
                problems.append(f"top-1 agreement {top1:.2f} < {tolerance['top1_agreement']:.2f}")
        limit = tolerance.get("max_rel_error")
        if limit is not None and not max_rel <= limit:
            problems.append(f"max relative error {max_rel:.3g} > {limit:.3g}")
    if problems:
        result.passed = False
        result.detail = "; ".join(problems)
    return result
