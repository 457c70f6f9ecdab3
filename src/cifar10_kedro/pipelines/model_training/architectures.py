"""Backend-neutral Keras 3 architectures, chosen by name from parameters.

Every model takes uint8 images (N, 32, 32, 3) and returns float32 class
probabilities; it is made of Keras' own layers only, so a saved model loads anywhere
Keras does, in safe mode.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import layers

from .params import (
    AugmentationLayersParams,
    FastCNNParams,
    ModelParams,
    NotebookCNNParams,
)

INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
WHITENING_LAYER = "whitening"
AUGMENTATION_LAYER = "augmentation"


def augmentation_layers(
    params: AugmentationLayersParams, seed: int
) -> list[layers.Layer]:
    """Return the random augmentation layers (none when all are off); Keras runs
    them only when training."""
    stack: list[layers.Layer] = []
    if params.rotation_degrees:
        stack.append(
            layers.RandomRotation(
                params.rotation_degrees / 360.0,
                fill_mode=params.fill_mode,
                interpolation=params.interpolation,
                seed=seed + 1,
            )
        )
    if params.width_shift or params.height_shift:
        stack.append(
            layers.RandomTranslation(
                params.height_shift,
                params.width_shift,
                fill_mode=params.fill_mode,
                interpolation=params.interpolation,
                seed=seed + 2,
            )
        )
    if not stack:
        return []
    return [keras.Sequential(stack, name=AUGMENTATION_LAYER)]


def notebook_cnn(params: NotebookCNNParams, dtype: str) -> list[layers.Layer]:
    """Return the notebook's layers exactly (7,385,110 parameters)."""
    return [
        layers.BatchNormalization(dtype=dtype),
        layers.Conv2D(32, (3, 3), strides=(1, 1), dtype=dtype),
        layers.BatchNormalization(dtype=dtype),
        layers.Activation("relu", dtype=dtype),
        layers.MaxPool2D(pool_size=(2, 2), dtype=dtype),
        layers.Flatten(dtype=dtype),
        layers.Dense(1024, activation="relu", dtype=dtype),
        layers.Dropout(0.5, dtype=dtype),
        layers.Dense(NUM_CLASSES, dtype=dtype),
    ]


def fast_cnn(params: FastCNNParams, dtype: str) -> list[layers.Layer]:
    """Return the layers of an airbench-style network.

    A stem (a 3x3 conv, or a fixed 2x2 patch-whitening conv that ``build_model``
    sets from the training images), then one group per width: conv, 2x2 max-pool,
    BN, activation, conv, BN, activation; global max pooling and a linear head whose
    logits are scaled by ``head_scale``.
    """
    norm = params.batchnorm
    # PyTorch's default conv initialisation (uniform, bound 1/sqrt(fan_in)), which
    # the fast recipes were tuned with; Keras' own default is Glorot.
    init = keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform")

    def conv_norm_act(width: int, pool: bool) -> list[layers.Layer]:
        conv = layers.Conv2D(
            width,
            3,
            padding="same",
            use_bias=False,
            kernel_initializer=init,
            dtype=dtype,
        )
        pooled = [layers.MaxPool2D(2, dtype=dtype)] if pool else []
        return [
            conv,
            *pooled,
            layers.BatchNormalization(
                momentum=norm.momentum,
                epsilon=norm.epsilon,
                scale=norm.scale,
                dtype=dtype,
            ),
            layers.Activation(params.activation, dtype=dtype),
        ]

    stack: list[layers.Layer] = [layers.Rescaling(1.0 / 255.0, dtype=dtype)]
    if params.stem == "whitening":
        # 2 x 12 whitened channels of each 2x2 patch (31x31). Its kernel never
        # trains; its bias may, for a few epochs (compile's whitening_bias_epochs).
        stack += [
            layers.Conv2D(2 * 2 * 2 * 3, 2, name=WHITENING_LAYER, dtype=dtype),
            layers.Activation(params.activation, dtype=dtype),
        ]
    else:
        stack += conv_norm_act(params.stem_width, pool=False)
    for width in params.widths:
        stack += conv_norm_act(width, pool=True) + conv_norm_act(width, pool=False)
    stack += [
        layers.GlobalMaxPooling2D(dtype=dtype),
        layers.Dropout(params.dropout, dtype=dtype),
        layers.Dense(NUM_CLASSES, use_bias=False, kernel_initializer=init, dtype=dtype),
    ]
    if params.head_scale != 1.0:
        stack.append(
            layers.Rescaling(params.head_scale, dtype=dtype, name="head_scale")
        )
    return stack


ARCHITECTURES: dict[str, Callable[..., list[layers.Layer]]] = {
    "fast_cnn": fast_cnn,
    "notebook_cnn": notebook_cnn,
}


def assemble(params: ModelParams, dtype: str, seed: int) -> keras.Sequential:
    """Return uint8 input -> float -> augmentation layers -> architecture -> softmax."""
    options = getattr(params, params.architecture)
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE, dtype="uint8", name="image"),
            # Images stay uint8 until here, the batch, to keep the input pipeline light.
            layers.Rescaling(1.0, dtype="float32", name="to_float"),
            *augmentation_layers(params.augmentation_layers, seed),
            *ARCHITECTURES[params.architecture](options, dtype),
            # Probabilities in float32 even under mixed precision, as the notebook's.
            layers.Activation("softmax", dtype="float32", name="softmax"),
        ],
        name=params.architecture,
    )


def whitening_weights(
    images: np.ndarray, size: int = 2, eps: float = 5e-4
) -> tuple[np.ndarray, np.ndarray]:
    """Return the kernel and bias of a conv that whitens ``size`` x ``size`` patches.

    The filters are the eigenvectors of the patches' covariance (pixels in [0, 1])
    scaled by 1/sqrt(eigenvalue + eps), each with its negative: 2 * size * size * 3
    channels of decorrelated, unit-variance, centred features.
    """
    x = images.astype(np.float64) / 255.0
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))
    # (n, h, w, channel, dy, dx) -> patches ordered (dy, dx, channel) like a kernel.
    patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, size * size * 3)
    mean = patches.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(patches, rowvar=False))
    filters = eigenvectors / np.sqrt(eigenvalues + eps)
    filters = np.concatenate([filters, -filters], axis=1)
    kernel = filters.reshape(size, size, 3, -1).astype("float32")
    return kernel, (-mean @ filters).astype("float32")


def dirac_kernel(kernel: np.ndarray) -> np.ndarray:
    """Return ``kernel`` (kh, kw, in, out) with its first ``in`` filters made the
    identity: filter i passes input channel i through its centre tap.

    A deep stack of such convs starts close to the identity, which trains faster
    (airbench's ablations: 21 -> 18 epochs to 94 %).
    """
    kh, kw, channels_in, channels_out = kernel.shape
    kernel = kernel.copy()
    count = min(channels_in, channels_out)
    kernel[:, :, :, :count] = 0.0
    kernel[kh // 2, kw // 2, np.arange(count), np.arange(count)] = 1.0
    return kernel
