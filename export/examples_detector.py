"""``ssd_mobilenet_v2_tiny``: a small SSD detector with the Object Detection API's interface.

Frozen GraphDef, input ``image_tensor`` uint8 [None, None, None, 3]; outputs
``detection_boxes`` [N, 100, 4] (normalized ymin, xmin, ymax, xmax in [0, 1]),
``detection_scores`` [N, 100] (sorted, descending), ``detection_classes`` [N, 100] (1-based
COCO ids up to 90; 0 in padded slots) and ``num_detections`` [N], all float32.

Inside: cast + bilinear resize to 192x192, scale to [-1, 1], a MobileNetV2-style backbone,
SSD heads on three feature maps (SSDLite depthwise 3x3 + 1x1 on 12x12, full 3x3 convs on 6x6
and 3x3), anchors decoded
center-size style with the usual (10, 10, 5, 5) scale factors, sigmoid class scores, and
``CombinedNonMaxSuppression`` padded to 100 detections. Weights are random but seeded; head
biases are chosen so that scores spread over (0, 1) and a few dozen boxes survive NMS.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfsuite.export.examples import DETECTOR_INPUT, DETECTOR_OUTPUTS
from tfsuite.export.examples_mobilenet import MobileNetBlocks, WeightBank

__all__ = [
    "DETECTOR_SEED",
    "IMAGE_SIZE",
    "MAX_DETECTIONS",
    "NUM_CLASSES",
    "DetectorModule",
    "anchor_boxes",
    "detector_graph_def",
]

DETECTOR_SEED = 2
IMAGE_SIZE = 192
NUM_CLASSES = 90
MAX_DETECTIONS = 100
SCORE_THRESHOLD = 0.3
IOU_THRESHOLD = 0.5
#: Box-coder scale factors (ty, tx, th, tw) of the TF Object Detection API's SSD configs.
BOX_SCALES = (10.0, 10.0, 5.0, 5.0)
#: (feature map size, anchor scale) per SSD head; three anchors (aspect 1, 2, 1/2) per cell.
FEATURE_MAPS = ((12, 0.2), (6, 0.45), (3, 0.75))
ASPECT_RATIOS = (1.0, 2.0, 0.5)

# (expansion, output channels, stride) per inverted-residual block; the marked outputs feed heads.
_BACKBONE = (
    (1, 16, 1),
    (6, 24, 2),
    (6, 24, 1),
    (6, 32, 2),
    (6, 32, 1),
    (6, 64, 2),  # 12x12
    (6, 64, 1),
    (6, 96, 2),  # 6x6
    (6, 128, 2),  # 3x3
)
_HEAD_TAPS = {6: 0, 7: 1, 8: 2}  # block index (after it) -> feature map index


def anchor_boxes() -> np.ndarray:
    """All anchors as (ycenter, xcenter, height, width), normalized; cell-major like the heads."""
    rows: list[tuple[float, float, float, float]] = []
    for size, scale in FEATURE_MAPS:
        for i in range(size):
            for j in range(size):
                yc, xc = (i + 0.5) / size, (j + 0.5) / size
                for ratio in ASPECT_RATIOS:
                    root = float(np.sqrt(ratio))
                    rows.append((yc, xc, scale / root, scale * root))
    return np.asarray(rows, dtype=np.float32)


class DetectorModule(tf.Module):
    """The detector as a ``tf.Module`` over seeded variables (frozen by ``detector_graph_def``)."""

    def __init__(self, seed: int = DETECTOR_SEED) -> None:
        super().__init__(name="ssd_mobilenet_v2_tiny")
        self._bank = WeightBank(seed)
        self._blocks = MobileNetBlocks(self._bank)
        self._anchors = anchor_boxes()
        # One eager call creates every weight in a fixed order; traced calls reuse them.
        self.detect(tf.zeros([1, IMAGE_SIZE, IMAGE_SIZE, 3], tf.uint8))
        self.weights = list(self._bank.variables.values())

    def _features(self, images: tf.Tensor) -> list[tf.Tensor]:
        blocks = self._blocks
        x = blocks.conv_bn(images, "FeatureExtractor/Conv", 16, kernel=3, stride=2)
        taps: list[tf.Tensor] = []
        for index, (expansion, filters, stride) in enumerate(_BACKBONE):
            x = blocks.inverted_residual(
                x, f"FeatureExtractor/block_{index}", expansion, filters, stride
            )
            if index in _HEAD_TAPS:
                taps.append(x)
        return taps

    def _heads(self, features: list[tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        blocks = self._blocks
        anchors_per_cell = len(ASPECT_RATIOS)
        boxes, logits = [], []
        for index, feature in enumerate(features):
            name = f"BoxPredictor_{index}"
            batch = tf.shape(feature)[0]
            if index == 0:
                # SSDLite head on the large map (cheap): depthwise 3x3, then 1x1 predictions.
                box_in = blocks.depthwise_bn(feature, f"{name}/BoxEncodingPredictor_depthwise")
                cls_in = blocks.depthwise_bn(feature, f"{name}/ClassPredictor_depthwise")
                kernel, scale = 1, 0.6
            else:
                # Full 3x3 SSD heads on the small maps: cheap there, and they carry most of
                # the weights, so weight quantization shrinks the graph the way it does for
                # real detectors.
                box_in = cls_in = feature
                kernel, scale = 3, 1.0 / 3.0
            box = blocks.conv_bias(
                box_in,
                f"{name}/BoxEncodingPredictor",
                anchors_per_cell * 4,
                0.05 * scale,
                0.0,
                0.1,
                kernel=kernel,
            )
            # Per-class biases well below zero: most classes stay quiet, a few fire, so
            # scores spread over (0, 1) and a few dozen boxes pass the score threshold.
            cls = blocks.conv_bias(
                cls_in,
                f"{name}/ClassPredictor",
                anchors_per_cell * NUM_CLASSES,
                0.5 * scale,
                -8.5,
                0.5,
                kernel=kernel,
            )
            boxes.append(tf.reshape(box, [batch, -1, 4]))
            logits.append(tf.reshape(cls, [batch, -1, NUM_CLASSES]))
        return (
            tf.concat(boxes, axis=1, name="concat_boxes"),
            tf.concat(logits, axis=1, name="concat_logits"),
        )

    def _decode(self, encodings: tf.Tensor) -> tf.Tensor:
        anchors = tf.constant(self._anchors, name="anchors")
        ya, xa, ha, wa = tf.unstack(anchors, axis=-1)
        scaled = encodings / tf.constant(BOX_SCALES, dtype=tf.float32)
        ty, tx, th, tw = tf.unstack(scaled, axis=-1)
        yc, xc = ty * ha + ya, tx * wa + xa
        h, w = tf.exp(th) * ha, tf.exp(tw) * wa
        corners = [yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2]
        return tf.stack(corners, axis=-1, name="decoded_boxes")

    @tf.function(
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name=DETECTOR_INPUT)],
        autograph=False,
    )
    def detect(self, image_tensor: tf.Tensor) -> dict[str, tf.Tensor]:
        with tf.name_scope("Preprocessor"):
            images = tf.cast(image_tensor, tf.float32)
            images = tf.image.resize(images, [IMAGE_SIZE, IMAGE_SIZE], method="bilinear")
            images = images * (2.0 / 255.0) - 1.0
        encodings, logits = self._heads(self._features(images))
        with tf.name_scope("Postprocessor"):
            boxes = self._decode(encodings)
            scores = tf.sigmoid(logits)
            nms = tf.image.combined_non_max_suppression(
                tf.expand_dims(boxes, 2),  # one box per anchor, shared by all classes
                scores,
                max_output_size_per_class=MAX_DETECTIONS,
                max_total_size=MAX_DETECTIONS,
                iou_threshold=IOU_THRESHOLD,
                score_threshold=SCORE_THRESHOLD,
                pad_per_class=False,
                clip_boxes=True,
            )
            valid = tf.sequence_mask(nms.valid_detections, MAX_DETECTIONS)
            # 1-based ids like the OD API's label offset; padded slots stay 0.
            classes = tf.where(valid, nms.nmsed_classes + 1.0, tf.zeros_like(nms.nmsed_classes))
        return {
            "detection_boxes": tf.identity(nms.nmsed_boxes, name="detection_boxes"),
            "detection_scores": tf.identity(nms.nmsed_scores, name="detection_scores"),
            "detection_classes": tf.identity(classes, name="detection_classes"),
            "num_detections": tf.identity(
                tf.cast(nms.valid_detections, tf.float32), name="num_detections"
            ),
        }


def detector_graph_def(seed: int = DETECTOR_SEED) -> tf.compat.v1.GraphDef:
    """Build the detector and freeze it into a GraphDef (inputs/outputs as in the module doc)."""
    from tfsuite.export.examples_graph import freeze_concrete_function

    module = DetectorModule(seed)
    return freeze_concrete_function(module.detect.get_concrete_function(), DETECTOR_OUTPUTS)
