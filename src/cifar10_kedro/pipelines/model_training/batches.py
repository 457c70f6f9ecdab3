"""The training batches: their order and augmentation, a pure function of the seed.

Batch ``step`` of epoch ``epoch`` is computed from ``(seed, epoch, step)`` alone, so a
resumed run sees exactly the batches an uninterrupted one saw, and every process of a
distributed run can compute its own share of any batch without talking to the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from .params import BatchAugmentationParams

# Stream tags, so that order, flips and shifts never share random numbers.
_ORDER, _FLIP, _SHIFT, _HALF = 0, 1, 2, 3


class TrainingBatches:
    """The augmented training batches of every epoch.

    Args:
        x: uint8 images (N, 32, 32, 3).
        y: labels, as the loss wants them (integers or one-hot rows).
        batch_size: images per batch (the global batch under data parallelism).
        seed: the source of every random choice.
        augmentation: flips and translation applied to each batch.
        drop_remainder: leave out each epoch's last, smaller batch.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        batch_size: int,
        seed: int,
        augmentation: BatchAugmentationParams,
        drop_remainder: bool,
    ) -> None:
        if len(x) < batch_size and drop_remainder:
            raise ValueError(
                f"model_training.fit.batch_size is {batch_size} but there are only "
                f"{len(x)} training images, and drop_remainder leaves out the last, "
                "smaller batch: expected a batch size of at most the number of images."
            )
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.seed = seed
        self.augmentation = augmentation
        size = len(x)
        self.steps_per_epoch = (
            size // batch_size if drop_remainder else -(-size // batch_size)
        )
        # Alternating flips: this half of the images is mirrored in even epochs, the
        # other half in odd ones, so each image is seen both ways every two epochs.
        half = np.random.default_rng([seed, _HALF]).permutation(size) < size // 2
        self._mirrored_in_even_epochs = half

    def batch(self, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the images and labels of batch ``step`` (0-based) of ``epoch``."""
        order = np.random.default_rng([self.seed, _ORDER, epoch]).permutation(
            len(self.x)
        )
        index = order[step * self.batch_size : (step + 1) * self.batch_size]
        images = self.x[index]
        flips = self._flips(index, epoch, step)
        if flips is not None:
            images[flips] = images[flips, :, ::-1]
        if self.augmentation.translate:
            images = self._translate(images, epoch, step)
        return images, self.y[index]

    def _flips(self, index: np.ndarray, epoch: int, step: int) -> np.ndarray | None:
        mode = self.augmentation.flip
        if mode == "alternating":
            return self._mirrored_in_even_epochs[index] ^ bool(epoch % 2)
        if mode == "random":
            rng = np.random.default_rng([self.seed, _FLIP, epoch, step])
            return rng.random(len(index)) < 0.5  # noqa: PLR2004
        return None

    def _translate(self, images: np.ndarray, epoch: int, step: int) -> np.ndarray:
        """Return each image shifted by its own random offset, borders reflected."""
        pad = self.augmentation.translate
        rng = np.random.default_rng([self.seed, _SHIFT, epoch, step])
        offsets = rng.integers(0, 2 * pad + 1, size=(len(images), 2))
        padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), "reflect")
        height, width = images.shape[1:3]
        rows = offsets[:, :1] + np.arange(height)
        cols = offsets[:, 1:] + np.arange(width)
        picked = np.arange(len(images))[:, None, None]
        return padded[picked, rows[:, :, None], cols[:, None, :]]

    def epochs(self, first: int, last: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield every batch of epochs ``first`` to ``last - 1``, in order."""
        for epoch in range(first, last):
            for step in range(self.steps_per_epoch):
                yield self.batch(epoch, step)

    def fit_inputs(self, first: int, last: int) -> dict[str, Any]:
        """Return ``fit``'s data arguments for epochs ``first`` to ``last - 1``.

        Under TensorFlow a ``tf.data`` pipeline over the batch numbers with autotuning
        off: with autotuning (as in the pipelines Keras builds itself from arrays or
        Python generators), the first batch of an epoch waited 25-90 s on 2 cores
        (measured). Under JAX and PyTorch, a Python generator.
        """
        if keras.backend.backend() != "tensorflow":
            return {
                "x": self.epochs(first, last),
                "steps_per_epoch": self.steps_per_epoch,
            }
        import tensorflow as tf  # noqa: PLC0415 - only under the TensorFlow backend

        steps = self.steps_per_epoch

        def load(number: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            epoch, step = divmod(int(number), steps)
            return self.batch(epoch, step)

        dtypes = (tf.as_dtype(self.x.dtype), tf.as_dtype(self.y.dtype))
        dataset = tf.data.Dataset.range(first * steps, last * steps).map(
            lambda number: tf.numpy_function(load, [number], dtypes)
        )
        shapes = ((None, *self.x.shape[1:]), (None, *self.y.shape[1:]))
        dataset = dataset.map(
            lambda images, labels: (
                tf.ensure_shape(images, shapes[0]),
                tf.ensure_shape(labels, shapes[1]),
            )
        )
        return {
            "x": _without_autotuning(dataset.prefetch(1)),
            "steps_per_epoch": steps,
        }


def _without_autotuning(dataset: Any) -> Any:
    import tensorflow as tf  # noqa: PLC0415

    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_optimization.apply_default_optimizations = False
    return dataset.with_options(options)


def validation_inputs(
    x: np.ndarray, y: np.ndarray, batch_size: int
) -> tuple[Any, ...] | Any:
    """Return ``fit``'s ``validation_data``: the arrays in order (under TensorFlow as a
    ``tf.data`` pipeline with autotuning off, for the reason in ``fit_inputs``)."""
    if keras.backend.backend() != "tensorflow":
        return (x, y)
    import tensorflow as tf  # noqa: PLC0415

    return _without_autotuning(
        tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).prefetch(1)
    )
