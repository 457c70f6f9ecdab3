"""The training batches: order, flips and translation as pure functions of the seed."""

from __future__ import annotations

import numpy as np
import pytest

from cifar10_kedro.pipelines.model_training.batches import (
    TrainingBatches,
    validation_inputs,
)
from cifar10_kedro.pipelines.model_training.params import BatchAugmentationParams


def images(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Images whose every pixel encodes (image, row, column, channel): asymmetric, so
    that a flip or a shift shows."""
    x = np.zeros((n, 32, 32, 3), np.uint8)
    x[..., 0] = np.arange(n)[:, None, None]
    x[..., 1] = np.arange(32)[None, :, None] * 8
    x[..., 2] = np.arange(32)[None, None, :] * 8
    return x, np.arange(n)


def batches(flip: str = "none", translate: int = 0, **kwargs) -> TrainingBatches:
    x, y = images()
    options = {"batch_size": 16, "seed": 3, "drop_remainder": False} | kwargs
    return TrainingBatches(
        x,
        y,
        augmentation=BatchAugmentationParams(flip=flip, translate=translate),
        **options,
    )


def epoch(b: TrainingBatches, number: int) -> tuple[np.ndarray, np.ndarray]:
    parts = [b.batch(number, step) for step in range(b.steps_per_epoch)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def test_every_image_once_an_epoch_in_a_new_order() -> None:
    b = batches()
    assert b.steps_per_epoch == 3  # 16 + 16 + 8
    x0, y0 = epoch(b, 0)
    x1, y1 = epoch(b, 1)
    assert sorted(y0) == sorted(y1) == list(range(40))
    assert list(y0) != list(y1)
    np.testing.assert_array_equal(x0, images()[0][y0])  # no augmentation: the images


def test_drop_remainder_leaves_out_the_last_smaller_batch() -> None:
    b = batches(drop_remainder=True)
    assert b.steps_per_epoch == 2
    assert len(epoch(b, 0)[1]) == 32
    with pytest.raises(ValueError, match="batch_size is 64 but there are only 40"):
        batches(drop_remainder=True, batch_size=64)


def test_a_batch_depends_on_seed_epoch_and_step_only() -> None:
    """Computed in any order, by any process, a batch is the same: a resumed run sees
    the batches an uninterrupted one saw."""
    a, b = batches("random", 2), batches("random", 2)
    later = b.batch(5, 1)
    earlier = [a.batch(e, s) for e in range(6) for s in range(3)]
    np.testing.assert_array_equal(earlier[5 * 3 + 1][0], later[0])
    np.testing.assert_array_equal(earlier[5 * 3 + 1][1], later[1])
    other_seed = batches("random", 2, seed=4).batch(5, 1)
    assert not np.array_equal(other_seed[1], later[1])


def test_alternating_flips_mirror_each_image_every_other_epoch() -> None:
    b = batches("alternating")
    x, _ = images()
    mirrored = {}
    for number in range(4):
        out, labels = epoch(b, number)
        for image, label in zip(out, labels, strict=True):
            if np.array_equal(image, x[label]):
                mirrored.setdefault(label, []).append(False)
            else:
                np.testing.assert_array_equal(image, x[label][:, ::-1])
                mirrored.setdefault(label, []).append(True)
    patterns = {tuple(v) for v in mirrored.values()}
    assert patterns == {(True, False, True, False), (False, True, False, True)}
    assert sum(v[0] for v in mirrored.values()) == 20  # half of them in even epochs


def test_random_flips_mirror_about_half() -> None:
    b = TrainingBatches(
        *images(40),
        batch_size=40,
        seed=0,
        augmentation=BatchAugmentationParams(flip="random", translate=0),
        drop_remainder=False,
    )
    x, _ = images(40)
    counts = []
    for number in range(20):
        out, labels = b.batch(number, 0)
        counts.append(
            sum(not np.array_equal(o, x[y]) for o, y in zip(out, labels, strict=True))
        )
    assert 300 < sum(counts) < 500  # of 800


def test_translation_shifts_each_image_within_the_bound_borders_reflected() -> None:
    b = batches(translate=2)
    x, _ = images()
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), "reflect")
    offsets = set()
    out, labels = epoch(b, 0)
    for image, label in zip(out, labels, strict=True):
        found = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if np.array_equal(image, padded[label, dy : dy + 32, dx : dx + 32])
        ]
        assert found, "not a crop of the reflect-padded image"
        offsets.add(found[0])
    assert len(offsets) > 10  # the offsets vary over the 25 possible


def test_fit_inputs_feed_the_epochs_asked_for() -> None:
    b = batches("alternating", 1)
    inputs = b.fit_inputs(2, 4)
    assert inputs["steps_per_epoch"] == 3
    fed = (
        list(inputs["x"].as_numpy_iterator())
        if hasattr(inputs["x"], "as_numpy_iterator")
        else list(inputs["x"])
    )
    assert len(fed) == 6
    for index, (x, y) in enumerate(fed):
        expected = b.batch(2 + index // 3, index % 3)
        np.testing.assert_array_equal(x, expected[0])
        np.testing.assert_array_equal(y, expected[1])


def test_validation_inputs_keep_the_order() -> None:
    x, y = images(10)
    data = validation_inputs(x, y, 4)
    parts = (
        list(data.as_numpy_iterator()) if hasattr(data, "as_numpy_iterator") else [data]
    )
    got = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    np.testing.assert_array_equal(got, y)
