"""The training batches: their order and augmentation, a pure function of the seed.

Batch ``step`` of epoch ``epoch`` is computed from ``(seed, epoch, step)`` alone, so a
resumed run sees exactly the batches an uninterrupted one saw, and every process of a
distributed run can compute its own share of any batch without talking to the others.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from .params import BatchAugmentationParams, FitParams, ResizePhase

# Stream tags, so that order, flips and shifts never share random numbers.
_ORDER, _FLIP, _SHIFT, _HALF = 0, 1, 2, 3


@dataclass(frozen=True)
class BatchShard:
    """The rows of every global batch that one process feeds.

    Under data parallelism each batch is cut into ``devices`` equal parts, one a
    device in the order of the device mesh; a process feeds the parts of its own
    devices (``positions``, adjacent), and JAX assembles the global batch from the
    processes' parts. The default, one device, is the whole batch.
    """

    devices: int = 1
    positions: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        first = self.positions[0] if self.positions else 0
        if tuple(self.positions) != tuple(range(first, first + len(self.positions))):
            raise ValueError(
                f"This process's devices sit at positions {list(self.positions)} of "
                "the device mesh; expected adjacent positions (one block of rows of "
                "every batch a process)."
            )

    @property
    def whole(self) -> bool:
        """Whether this process feeds every row (one process)."""
        return len(self.positions) == self.devices

    def rows(self, size: int, what: str = "a batch") -> slice:
        """Return this process's rows of a global batch of ``size`` images."""
        if size % self.devices:
            raise ValueError(
                f"Data parallelism over {self.devices} devices splits every batch "
                f"evenly, but {what} has {size} images, not a multiple of "
                f"{self.devices}."
            )
        part = size // self.devices
        return slice(self.positions[0] * part, (self.positions[-1] + 1) * part)


class TrainingBatches:
    """The augmented training batches of every epoch.

    Args:
        x: uint8 images (N, 32, 32, 3).
        y: labels, as the loss wants them (integers or one-hot rows).
        batch_size: images per batch (the global batch under data parallelism).
        seed: the source of every random choice.
        augmentation: flips and translation applied to each batch.
        drop_remainder: leave out each epoch's last, smaller batch.
        shard: the rows of each batch that this process feeds (under data
            parallelism); every batch is still drawn and augmented as a whole, so
            the processes' parts make up exactly the one-device batch.
        sizes: the image side of each epoch's batches, from the first epoch
            (``epoch_sizes``); epochs past its end, and an empty one, at full size.
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
        shard: BatchShard | None = None,
        sizes: Sequence[int] = (),
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
        self.shard = shard or BatchShard()
        self.sizes = tuple(sizes)
        _check_divisible(self.shard, batch_size, size, drop_remainder)
        # Alternating flips: this half of the images is mirrored in even epochs, the
        # other half in odd ones, so each image is seen both ways every two epochs.
        half = np.random.default_rng([seed, _HALF]).permutation(size) < size // 2
        self._mirrored_in_even_epochs = half

    @classmethod
    def for_fit(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        fit: FitParams,
        seed: int,
        shard: BatchShard | None = None,
    ) -> TrainingBatches:
        """The batches ``fit`` describes (its batch size, augmentation and
        ``drop_remainder``), as ``train_model`` and its time probe feed them."""
        return cls(
            x,
            y,
            batch_size=fit.batch_size,
            seed=seed,
            augmentation=fit.augmentation,
            drop_remainder=fit.drop_remainder,
            shard=shard,
            sizes=epoch_sizes(fit.progressive_resizing, fit.epochs, x.shape[1]),
        )

    def size(self, epoch: int) -> int:
        """Return the image side of ``epoch``'s batches."""
        return self.sizes[epoch] if epoch < len(self.sizes) else self.x.shape[1]

    def batch(self, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the images and labels of batch ``step`` (0-based) of ``epoch``
        (this process's rows of it under data parallelism)."""
        order = np.random.default_rng([self.seed, _ORDER, epoch]).permutation(
            len(self.x)
        )
        index = order[step * self.batch_size : (step + 1) * self.batch_size]
        # Random numbers are drawn for the whole batch, then this process's rows.
        mine = self.shard.rows(len(index))
        images = self.x[index[mine]]
        flips = self._flips(index, epoch, step)
        if flips is not None:
            flips = flips[mine]
            images[flips] = images[flips, :, ::-1]
        if self.augmentation.translate:
            offsets = self._offsets(len(index), epoch, step)[mine]
            images = _translate(images, offsets, self.augmentation.translate)
        size = self.size(epoch)
        if size != images.shape[1]:
            images = downscale(images, size)
        return images, self.y[index[mine]]

    def _flips(self, index: np.ndarray, epoch: int, step: int) -> np.ndarray | None:
        mode = self.augmentation.flip
        if mode == "alternating":
            return self._mirrored_in_even_epochs[index] ^ bool(epoch % 2)
        if mode == "random":
            rng = np.random.default_rng([self.seed, _FLIP, epoch, step])
            return rng.random(len(index)) < 0.5  # noqa: PLR2004
        return None

    def _offsets(self, count: int, epoch: int, step: int) -> np.ndarray:
        """Return each image's (row, column) offset into its padded copy."""
        pad = self.augmentation.translate
        rng = np.random.default_rng([self.seed, _SHIFT, epoch, step])
        return rng.integers(0, 2 * pad + 1, size=(count, 2))

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
        # One trace for every size: the sides are left open where they change.
        resized = any(side != self.x.shape[1] for side in self.sizes)
        image_shape = (None, None, self.x.shape[3]) if resized else self.x.shape[1:]
        shapes = ((None, *image_shape), (None, *self.y.shape[1:]))
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


def epoch_sizes(
    phases: Sequence[ResizePhase], epochs: int, full: int
) -> tuple[int, ...]:
    """Return the image side of each of ``epochs`` epochs: each phase of progressive
    resizing for its share of them (rounded to whole epochs, from the first), then
    ``full``; the last epoch is always at ``full``, the size the model is used at."""
    sizes: list[int] = []
    end = 0.0
    for phase in phases:
        end += phase.share * epochs
        last = min(int(end + 0.5), epochs - 1)  # halves round up
        sizes += [phase.size] * (last - len(sizes))
    return tuple(sizes + [full] * (epochs - len(sizes)))


def _area_weights(source: int, target: int) -> np.ndarray:
    """Return the (target, source) matrix that averages each output pixel's
    footprint on the input (area interpolation: every input pixel counts)."""
    edges = np.arange(target + 1) * source / target
    left, right = edges[:-1, None], edges[1:, None]
    pixels = np.arange(source)[None, :]
    overlap = np.clip(np.minimum(right, pixels + 1) - np.maximum(left, pixels), 0, None)
    return (overlap / (source / target)).astype(np.float32)


def downscale(images: np.ndarray, size: int) -> np.ndarray:
    """Return uint8 images (N, H, W, C) scaled down to (N, size, size, C) by area
    interpolation, as a separable product (cheap beside a training step)."""
    count, height, width, channels = images.shape
    rows, cols = _area_weights(height, size), _area_weights(width, size)
    out = rows @ images.astype(np.float32).reshape(count, height, width * channels)
    out = out.reshape(count, size, width, channels).transpose(0, 1, 3, 2) @ cols.T
    out = out.transpose(0, 1, 3, 2)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _translate(images: np.ndarray, offsets: np.ndarray, pad: int) -> np.ndarray:
    """Return each image shifted by its own offset, borders reflected."""
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), "reflect")
    height, width = images.shape[1:3]
    rows = offsets[:, :1] + np.arange(height)
    cols = offsets[:, 1:] + np.arange(width)
    picked = np.arange(len(images))[:, None, None]
    return padded[picked, rows[:, :, None], cols[:, None, :]]


def _check_divisible(
    shard: BatchShard, batch_size: int, size: int, drop_remainder: bool
) -> None:
    """Raise, naming the parameter to change, if a training batch cannot be split."""
    if shard.devices == 1:
        return
    devices = shard.devices
    if batch_size % devices:
        raise ValueError(
            f"model_training.fit.batch_size is {batch_size}, which data parallelism "
            f"over {devices} devices cannot split evenly: expected a multiple of "
            f"{devices} (the global batch; each device trains on batch_size / "
            f"{devices} images of it)."
        )
    last = size % batch_size
    if not drop_remainder and last % devices:
        raise ValueError(
            f"The last training batch of an epoch has {last} images ({size} images, "
            f"model_training.fit.batch_size {batch_size}), which data parallelism "
            f"over {devices} devices cannot split evenly: set "
            "model_training.fit.drop_remainder to true, or a batch size that leaves "
            f"a multiple of {devices}."
        )


def _without_autotuning(dataset: Any) -> Any:
    import tensorflow as tf  # noqa: PLC0415

    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_optimization.apply_default_optimizations = False
    return dataset.with_options(options)


def validation_inputs(
    x: np.ndarray, y: np.ndarray, batch_size: int, shard: BatchShard | None = None
) -> tuple[Any, ...] | Any:
    """Return ``fit``'s ``validation_data``: the arrays in order (under TensorFlow as a
    ``tf.data`` pipeline with autotuning off, for the reason in ``fit_inputs``).

    Under data parallelism, this process's rows of every validation batch of
    ``batch_size``, one after another: fed in batches of ``validation_batch_size``,
    they are its parts of the one-device run's batches.
    """
    shard = shard or BatchShard()
    if not shard.whole:
        starts = range(0, len(x), batch_size)
        parts = [
            np.arange(start, min(start + batch_size, len(x)))[
                shard.rows(
                    min(batch_size, len(x) - start),
                    f"the last validation batch ({len(x)} validation images, "
                    f"model_training.fit.batch_size {batch_size}; change "
                    "data_ingestion.validation_fraction or the batch size)",
                )
            ]
            for start in starts
        ]
        index = np.concatenate(parts)
        return (x[index], y[index])
    if shard.devices > 1:  # one process, several devices: check the last batch
        last = len(x) % batch_size
        if last:
            shard.rows(
                last,
                f"the last validation batch ({len(x)} validation images, "
                f"model_training.fit.batch_size {batch_size}; change "
                "data_ingestion.validation_fraction or the batch size)",
            )
    if keras.backend.backend() != "tensorflow":
        return (x, y)
    import tensorflow as tf  # noqa: PLC0415

    return _without_autotuning(
        tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).prefetch(1)
    )


def validation_batch_size(batch_size: int, shard: BatchShard | None = None) -> int:
    """Return the validation batch size this process feeds ``fit``."""
    shard = shard or BatchShard()
    return batch_size * len(shard.positions) // shard.devices
