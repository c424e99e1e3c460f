"""MobileNetV2 building blocks for the bundled example models, with seeded weights.

Both example models (the SSD detector and the classifier) are written in plain TensorFlow ops
rather than Keras layers so that the frozen graphs look like the TF1 graphs the suite is meant
for: ``Conv2D`` / ``DepthwiseConv2dNative`` followed by a separate ``FusedBatchNormV3`` and
``Relu6`` (the exporter's "fold batch norms" transform then has real work to do).

Weights come from one ``numpy.random.Generator`` per model, drawn in a fixed order, so every
build produces the same weights bit for bit, whatever else the process did before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

__all__ = ["BN_EPSILON", "MobileNetBlocks", "WeightBank", "make_divisible"]

BN_EPSILON = 1e-3


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet's channel rounding: nearest multiple of ``divisor``, never 10% below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass
class WeightBank:
    """Seeded weights, created as ``tf.Variable`` on first use and looked up by name afterwards.

    The model's forward function is traced once to create every weight (in call order, so the
    random stream is consumed deterministically); later traces find them by name.
    """

    seed: int
    variables: dict[str, tf.Variable] = field(default_factory=dict)
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def get(self, name: str, init: Callable[[np.random.Generator], np.ndarray]) -> tf.Variable:
        existing = self.variables.get(name)
        if existing is not None:
            return existing
        value = np.asarray(init(self._rng), dtype=np.float32)
        # init_scope: created eagerly even when first requested during the first trace.
        with tf.init_scope():
            var = tf.Variable(value, name=name.replace("/", "_"), trainable=False)
        self.variables[name] = var
        return var

    def he_normal(
        self, name: str, shape: tuple[int, ...], fan_in: int, gain: float = 1.0
    ) -> tf.Variable:
        std = gain * float(np.sqrt(2.0 / fan_in))
        return self.get(name, lambda rng: rng.normal(0.0, std, size=shape))

    def normal(self, name: str, shape: tuple[int, ...], mean: float, std: float) -> tf.Variable:
        return self.get(name, lambda rng: rng.normal(mean, std, size=shape))

    def uniform(self, name: str, shape: tuple[int, ...], low: float, high: float) -> tf.Variable:
        return self.get(name, lambda rng: rng.uniform(low, high, size=shape))


@dataclass
class MobileNetBlocks:
    """Conv / depthwise / inverted-residual blocks that draw their weights from a ``WeightBank``."""

    bank: WeightBank

    def batch_norm(self, x: tf.Tensor, name: str, channels: int) -> tf.Tensor:
        # Inference-mode BN with its statistics kept as separate constants (not pre-folded):
        # mean/variance near 0/1 so activations stay in a sensible range with He-initialised convs.
        gamma = self.bank.uniform(f"{name}/gamma", (channels,), 0.8, 1.2)
        beta = self.bank.normal(f"{name}/beta", (channels,), 0.0, 0.1)
        mean = self.bank.normal(f"{name}/moving_mean", (channels,), 0.0, 0.1)
        var = self.bank.uniform(f"{name}/moving_variance", (channels,), 0.8, 1.2)
        # The original ``FusedBatchNorm`` op, as in TF1-era frozen graphs (the OD API's
        # ssd_mobilenet_v2 has it): the Graph Transform Tool's ``fold_old_batch_norms``
        # matches this op, not FusedBatchNormV3, so the "optimized" variant has work to do.
        return tf.raw_ops.FusedBatchNorm(
            x=x,
            scale=gamma,
            offset=beta,
            mean=mean,
            variance=var,
            epsilon=BN_EPSILON,
            data_format="NHWC",
            is_training=False,
            name=name,
        ).y

    def conv_bn(
        self,
        x: tf.Tensor,
        name: str,
        filters: int,
        kernel: int = 1,
        stride: int = 1,
        activation: bool = True,
        gain: float = 1.0,
    ) -> tf.Tensor:
        cin = int(x.shape[-1])
        shape = (kernel, kernel, cin, filters)
        w = self.bank.he_normal(f"{name}/weights", shape, kernel * kernel * cin, gain)
        y = tf.nn.conv2d(x, w, strides=stride, padding="SAME", name=f"{name}/Conv2D")
        y = self.batch_norm(y, f"{name}/BatchNorm", filters)
        return tf.nn.relu6(y, name=f"{name}/Relu6") if activation else y

    def depthwise_bn(self, x: tf.Tensor, name: str, stride: int = 1) -> tf.Tensor:
        cin = int(x.shape[-1])
        w = self.bank.he_normal(f"{name}/depthwise_weights", (3, 3, cin, 1), 9)
        y = tf.nn.depthwise_conv2d(
            x, w, strides=[1, stride, stride, 1], padding="SAME", name=f"{name}/depthwise"
        )
        y = self.batch_norm(y, f"{name}/BatchNorm", cin)
        return tf.nn.relu6(y, name=f"{name}/Relu6")

    def inverted_residual(
        self, x: tf.Tensor, name: str, expansion: int, filters: int, stride: int
    ) -> tf.Tensor:
        """MobileNetV2 block: 1x1 expand, 3x3 depthwise, linear 1x1 projection, residual add."""
        cin = int(x.shape[-1])
        y = x
        if expansion != 1:
            y = self.conv_bn(y, f"{name}/expand", cin * expansion)
        y = self.depthwise_bn(y, f"{name}/depthwise", stride)
        # The projection is linear (no ReLU6); scaled down so residual sums do not grow with depth.
        y = self.conv_bn(y, f"{name}/project", filters, activation=False, gain=0.5)
        if stride == 1 and cin == filters:
            y = tf.add(x, y, name=f"{name}/add")
        return y

    def conv_bias(
        self,
        x: tf.Tensor,
        name: str,
        filters: int,
        std: float,
        bias_mean: float,
        bias_std: float,
        kernel: int = 1,
    ) -> tf.Tensor:
        """A prediction conv with bias (SSD box/class heads, classifier logits).

        Each output's weights sum to zero: the inputs (post-ReLU6) share a large positive mean,
        and with random weights that mean, not the image, would decide the prediction.
        """
        cin = int(x.shape[-1])
        shape = (kernel, kernel, cin, filters)

        def centred(rng: np.random.Generator) -> np.ndarray:
            w = rng.normal(0.0, std, size=shape)
            return w - w.mean(axis=(0, 1, 2), keepdims=True)

        w = self.bank.get(f"{name}/weights", centred)
        b = self.bank.normal(f"{name}/biases", (filters,), bias_mean, bias_std)
        y = tf.nn.conv2d(x, w, strides=1, padding="SAME", name=f"{name}/Conv2D")
        return tf.nn.bias_add(y, b, name=f"{name}/BiasAdd")
