"""BatchNorm's fused kernel in training computes what Keras' own BatchNorm does."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from cifar10_kedro.pipelines.model_training.fused import fused_batchnorm


def tiny_model(policy: str) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", dtype=policy)(inputs)
    x = keras.layers.BatchNormalization(
        momentum=0.6, epsilon=1e-12, scale=False, dtype=policy
    )(x)
    x = keras.layers.GlobalMaxPooling2D(dtype=policy)(x)
    return keras.Model(inputs, keras.layers.Dense(2, dtype=policy)(x))


def train_step(model: keras.Model, x: np.ndarray, fused: bool) -> dict:
    """One forward and backward pass in training; what it computed and updated."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    norm = next(
        layer
        for layer in copy.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    with fused_batchnorm(copy, fused):
        graph = tf.function(lambda v: copy(v, training=True)).get_concrete_function(
            tf.TensorSpec(x.shape, "float32")
        )
        with tf.GradientTape() as tape:
            y = tf.cast(copy(x, training=True), "float32")
            loss = tf.reduce_sum(y**2)
        gradients = tape.gradient(loss, copy.trainable_variables)
    return {
        "ops": {op.type for op in graph.graph.get_operations()},
        "output": np.asarray(y),
        "gradients": [np.asarray(g) for g in gradients],
        "moving": [np.asarray(norm.moving_mean), np.asarray(norm.moving_variance)],
        "restored": "call" not in vars(norm),
        "inference": np.asarray(tf.cast(copy(x, training=False), "float32")),
    }


@pytest.mark.parametrize(
    "policy",
    ["float32", pytest.param("mixed_bfloat16", marks=pytest.mark.bfloat16_kernels)],
)
def test_the_fused_kernel_trains_as_keras_batchnorm_does(policy: str) -> None:
    model = tiny_model(policy)
    x = np.random.default_rng(1).normal(size=(16, 8, 8, 3)).astype("float32")
    plain, fused = train_step(model, x, False), train_step(model, x, True)

    assert "FusedBatchNormV3" in fused["ops"]
    assert "FusedBatchNormV3" not in plain["ops"]
    atol = 1e-4 if policy == "float32" else 2e-2
    np.testing.assert_allclose(fused["output"], plain["output"], atol=atol)
    # Relative to the largest gradient: the conv's bias has a gradient of about 0
    # (BatchNorm removes it), so there the two differ by rounding alone.
    scale = max(np.abs(g).max() for g in plain["gradients"])
    for a, b in zip(plain["gradients"], fused["gradients"], strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4 * scale)
    # Keras' running statistics: the biased batch variance, momentum 0.6.
    for a, b in zip(plain["moving"], fused["moving"], strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert fused["restored"]  # Keras' own call again after the block
    np.testing.assert_allclose(fused["inference"], plain["inference"], atol=atol)


def test_disabled_changes_nothing() -> None:
    model = tiny_model("float32")
    with fused_batchnorm(model, enabled=False):
        assert not any("call" in vars(layer) for layer in model.layers)
