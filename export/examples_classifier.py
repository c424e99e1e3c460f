"""``mobilenet_v2``: the MobileNetV2 classifier of seed 000, with seeded random weights.

Input ``input`` float32 [None, 224, 224, 3] (pixels scaled to [-1, 1], MobileNet's convention),
output ``probabilities`` float32 [None, 1000] (softmax). The architecture is MobileNetV2's
(stem conv, 17 inverted-residual blocks, 1x1 conv to 1280, global average pool, 1000-way
logits) with a width multiplier; written both as a frozen GraphDef and as a SavedModel whose
``serving_default`` signature maps ``input`` -> ``probabilities``.

With random weights, the pooled features are dominated by a part that does not depend on the
image, so most inputs share one top-1 class (the probabilities themselves differ per image).
That keeps top-1 stable under 8-bit weights (a trained network would be image-specific and
equally stable); output agreement between variants is still measured on the probabilities.
"""

from __future__ import annotations

import tensorflow as tf

from tfsuite.export.examples import CLASSIFIER_INPUT, CLASSIFIER_OUTPUT
from tfsuite.export.examples_mobilenet import MobileNetBlocks, WeightBank, make_divisible

__all__ = [
    "CLASSIFIER_ALPHA",
    "CLASSIFIER_SEED",
    "INPUT_SIZE",
    "NUM_CLASSES",
    "ClassifierModule",
    "classifier_graph_def",
]

CLASSIFIER_SEED = 0
INPUT_SIZE = 224
NUM_CLASSES = 1000
#: Width multiplier (seed 000 benchmarks the 1.4 checkpoint; 1.0 is the canonical one).
CLASSIFIER_ALPHA = 1.0

# MobileNetV2's table: (expansion t, channels c, repeats n, first stride s).
_BLOCKS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class ClassifierModule(tf.Module):
    """MobileNetV2 over seeded variables; ``serve`` is the ``serving_default`` signature."""

    def __init__(self, seed: int = CLASSIFIER_SEED, alpha: float = CLASSIFIER_ALPHA) -> None:
        super().__init__(name="mobilenet_v2")
        self._alpha = alpha
        self._bank = WeightBank(seed)
        self._blocks = MobileNetBlocks(self._bank)
        # The first trace creates every weight in a fixed order (see WeightBank).
        self.concrete = self.serve.get_concrete_function()
        self.weights = list(self._bank.variables.values())

    def _logits(self, images: tf.Tensor) -> tf.Tensor:
        blocks, alpha = self._blocks, self._alpha
        stem = make_divisible(32 * alpha)
        x = blocks.conv_bn(images, "MobilenetV2/Conv", stem, kernel=3, stride=2)
        index = 0
        for expansion, channels, repeats, first_stride in _BLOCKS:
            filters = make_divisible(channels * alpha)
            for repeat in range(repeats):
                stride = first_stride if repeat == 0 else 1
                x = blocks.inverted_residual(
                    x, f"MobilenetV2/expanded_conv_{index}", expansion, filters, stride
                )
                index += 1
        last = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
        x = blocks.conv_bn(x, "MobilenetV2/Conv_1", last)
        x = tf.reduce_mean(x, axis=[1, 2], keepdims=True, name="MobilenetV2/Logits/AvgPool")
        # Weights wide enough that logits differ by several units: a clear top-1 that
        # small (quantization-sized) weight changes do not flip.
        x = blocks.conv_bias(x, "MobilenetV2/Logits/Conv2d_1c_1x1", NUM_CLASSES, 0.15, 0.0, 0.5)
        return tf.squeeze(x, axis=[1, 2], name="MobilenetV2/Logits/Squeeze")

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, INPUT_SIZE, INPUT_SIZE, 3], tf.float32, name=CLASSIFIER_INPUT)
        ],
        autograph=False,
    )
    def serve(self, input: tf.Tensor) -> dict[str, tf.Tensor]:
        probabilities = tf.nn.softmax(self._logits(input), name=CLASSIFIER_OUTPUT)
        return {CLASSIFIER_OUTPUT: probabilities}


def classifier_graph_def(module: ClassifierModule) -> tf.compat.v1.GraphDef:
    """Freeze ``module.serve`` (Placeholder ``input`` -> node ``probabilities``)."""
    from tfsuite.export.examples_graph import freeze_concrete_function

    return freeze_concrete_function(module.concrete, (CLASSIFIER_OUTPUT,))
