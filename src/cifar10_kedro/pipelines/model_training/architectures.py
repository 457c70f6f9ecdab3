"""Backend-neutral Keras 3 architectures, chosen by name from parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import layers

INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10


def augmentation_block(params: dict[str, Any], seed: int) -> keras.Sequential:
    """Return the random augmentation layers; Keras runs them only when training."""
    stack: list[layers.Layer] = []
    fill_mode = params.get("fill_mode", "nearest")
    flips = [
        mode
        for mode, on in (
            ("horizontal", params.get("horizontal_flip", False)),
            ("vertical", params.get("vertical_flip", False)),
        )
        if on
    ]
    if flips:
        mode = "horizontal_and_vertical" if len(flips) == 2 else flips[0]  # noqa: PLR2004
        stack.append(layers.RandomFlip(mode, seed=seed))
    if params.get("rotation_degrees", 0):
        stack.append(
            layers.RandomRotation(
                params["rotation_degrees"] / 360.0, fill_mode=fill_mode, seed=seed + 1
            )
        )
    if params.get("width_shift", 0) or params.get("height_shift", 0):
        stack.append(
            layers.RandomTranslation(
                params.get("height_shift", 0.0),
                params.get("width_shift", 0.0),
                fill_mode=fill_mode,
                interpolation=params.get("interpolation", "bilinear"),
                seed=seed + 2,
            )
        )
    if not stack:  # an empty Sequential cannot be built: pass images through
        stack.append(layers.Identity(name="no_augmentation"))
    return keras.Sequential(stack, name="augmentation")


def notebook_cnn(params: dict[str, Any], dtype: str) -> list[layers.Layer]:
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


WHITENING_LAYER = "whitening"


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


def fast_cnn(params: dict[str, Any], dtype: str) -> list[layers.Layer]:
    """Return a small all-convolutional net in the style of fast CIFAR-10 recipes.

    A stem (a 3x3 conv, or a fixed 2x2 patch-whitening conv set from the training
    images by ``build_model``), then one group per width: conv, 2x2 max-pool, BN,
    ReLU, conv, BN, ReLU; global max pooling into a linear head.
    """
    stem = params.get("stem_width", 32)
    widths = params.get("widths", [64, 128, 256])

    def conv_bn_relu(width: int, pool: bool) -> list[layers.Layer]:
        conv = layers.Conv2D(width, 3, padding="same", use_bias=False, dtype=dtype)
        pooled = [layers.MaxPool2D(2, dtype=dtype)] if pool else []
        return [
            conv,
            *pooled,
            layers.BatchNormalization(momentum=0.9, dtype=dtype),
            layers.Activation("relu", dtype=dtype),
        ]

    stack: list[layers.Layer] = [layers.Rescaling(1.0 / 255.0, dtype=dtype)]
    if params.get("stem", "conv") == "whitening":
        # 2 x 12 whitened channels of each 2x2 patch (31x31); never trained.
        stack += [
            layers.Conv2D(24, 2, trainable=False, name=WHITENING_LAYER, dtype=dtype),
            layers.Activation("relu", dtype=dtype),
        ]
    else:
        stack += conv_bn_relu(stem, pool=False)
    for width in widths:
        stack += conv_bn_relu(width, pool=True) + conv_bn_relu(width, pool=False)
    stack += [
        layers.GlobalMaxPooling2D(dtype=dtype),
        layers.Dropout(params.get("dropout", 0.0), dtype=dtype),
        layers.Dense(NUM_CLASSES, use_bias=False, dtype=dtype),
    ]
    return stack


ARCHITECTURES: dict[str, Callable[[dict[str, Any], str], list[layers.Layer]]] = {
    "notebook_cnn": notebook_cnn,
    "fast_cnn": fast_cnn,
}


def assemble(
    architecture: str,
    params: dict[str, Any],
    augmentation: keras.Sequential,
    dtype: str,
) -> keras.Sequential:
    """Return uint8 input -> float cast -> augmentation -> architecture -> softmax."""
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"model_training.architecture is '{architecture}'; expected one of "
            f"{sorted(ARCHITECTURES)}."
        )
    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPE, dtype="uint8", name="image"),
            # Images stay uint8 until here, the batch, to keep the input pipeline light.
            layers.Rescaling(1.0, dtype="float32", name="to_float"),
            augmentation,
            *ARCHITECTURES[architecture](params, dtype),
            # Probabilities in float32 even under mixed precision, as the notebook's softmax.
            layers.Activation("softmax", dtype="float32", name="softmax"),
        ],
        name=architecture,
    )
