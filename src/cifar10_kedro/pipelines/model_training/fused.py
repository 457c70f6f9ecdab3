"""BatchNorm in one kernel while a model trains under TensorFlow.

Keras 3 computes BatchNorm from ``moments``: about ten element-wise ops forward and
as many backward, each an Eigen kernel that TensorFlow's CPU wheel builds without
AVX2. TensorFlow's ``FusedBatchNormV3`` is one oneDNN kernel each way: 4-14 % more
training images/s for the default network on 2 cores in float32, 13 % in mixed bfloat16
(docs/results.md, "Where a CPU epoch goes"). The layers, their variables and
what a saved model holds stay Keras' own; only the training-time computation changes,
and only for as long as ``fused_batchnorm`` is entered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import keras


@contextmanager
def fused_batchnorm(model: keras.Model, enabled: bool = True) -> Iterator[None]:
    """Inside the block, every BatchNormalization layer of ``model`` (over the last
    axis) normalises training batches with TensorFlow's fused kernel and updates its
    running statistics as Keras does (``momentum``); inference is unchanged. Under
    another backend, or with ``enabled`` false, nothing changes."""
    layers = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
        and layer.axis in (-1, len(layer.input.shape) - 1)
    ]
    if not enabled or keras.backend.backend() != "tensorflow" or not layers:
        yield
        return
    for layer in layers:
        layer.call = _fused_call(layer)  # an instance attribute shadows the method
    try:
        yield
    finally:
        for layer in layers:
            del layer.call


def _fused_call(layer: keras.layers.BatchNormalization) -> Callable[..., Any]:
    import tensorflow as tf  # noqa: PLC0415 - only under the TensorFlow backend

    keras_call = type(layer).call.__get__(layer)

    def call(inputs: Any, training: Any = None, mask: Any = None) -> Any:
        if not training or mask is not None or layer.trainable is False:
            return keras_call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        scale = layer.gamma if layer.scale else tf.ones([channels])
        offset = layer.beta if layer.center else tf.zeros([channels])
        # The kernel takes bfloat16 or float32 images, float32 statistics; its epsilon
        # is at least 1.001e-5 (TensorFlow's floor), which at the variances seen here
        # changes nothing measurable.
        x = (
            inputs
            if inputs.dtype in (tf.float32, tf.bfloat16)
            else tf.cast(inputs, tf.float32)
        )
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x,
            tf.cast(scale, tf.float32),
            tf.cast(offset, tf.float32),
            epsilon=layer.epsilon,
            is_training=True,
        )
        # The kernel's variance is unbiased; Keras' running variance is not.
        count = tf.cast(tf.size(x) // channels, tf.float32)
        variance = tf.cast(variance, tf.float32) * (count - 1) / count
        momentum = layer.momentum
        layer.moving_mean.assign(
            layer.moving_mean * momentum + tf.cast(mean, "float32") * (1 - momentum)
        )
        layer.moving_variance.assign(
            layer.moving_variance * momentum + variance * (1 - momentum)
        )
        return tf.cast(y, inputs.dtype)

    return call
