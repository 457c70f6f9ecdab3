"""The training batches: order, flips and translation as pure functions of the seed."""

from __future__ import annotations

import numpy as np
import pytest

from cifar10_kedro.pipelines.model_training.batches import (
    TrainingBatches,
    downscale,
    epoch_sizes,
    validation_inputs,
)
from cifar10_kedro.pipelines.model_training.params import (
    BatchAugmentationParams,
    ResizePhase,
)


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


def phases(*pairs: tuple[int, float]) -> list[ResizePhase]:
    return [ResizePhase(size=size, share=share) for size, share in pairs]


@pytest.mark.parametrize(
    ("pairs", "epochs", "expected"),
    [
        ((), 3, (32, 32, 32)),
        (((24, 0.5),), 10, (24,) * 5 + (32,) * 5),
        # Shares round to whole epochs, halves up, from the first phase on.
        (((16, 0.25), (24, 0.25)), 10, (16, 16, 16, 24, 24, 32, 32, 32, 32, 32)),
        (((24, 0.5),), 3, (24, 24, 32)),
        (((24, 0.1),), 4, (32, 32, 32, 32)),  # 0.4 of an epoch: none
        # The last epoch is at full size whatever the rounding.
        (((24, 0.5),), 1, (32,)),
        (((16, 0.45), (24, 0.45)), 2, (16, 32)),
    ],
)
def test_epoch_sizes_give_each_phase_its_share(pairs, epochs, expected) -> None:
    assert epoch_sizes(phases(*pairs), epochs, 32) == expected


def test_downscale_averages_each_pixels_footprint() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 32, 32, 3)).astype(np.uint8)
    # A factor of 2: the mean of each 2x2 block, rounded.
    blocks = x.reshape(3, 16, 2, 16, 2, 3).astype(float).mean(axis=(2, 4))
    np.testing.assert_array_equal(downscale(x, 16), np.rint(blocks).astype(np.uint8))
    # Any factor: a flat image stays flat, the mean brightness stays, rows stay rows.
    flat = np.full((1, 32, 32, 3), 77, np.uint8)
    np.testing.assert_array_equal(downscale(flat, 24), np.full((1, 24, 24, 3), 77))
    smaller = downscale(x, 24)
    assert smaller.shape == (3, 24, 24, 3)
    assert smaller.dtype == np.uint8
    np.testing.assert_allclose(
        smaller.astype(float).mean(axis=(1, 2)),
        x.astype(float).mean(axis=(1, 2)),
        atol=1,
    )
    striped = np.zeros((1, 32, 32, 3), np.uint8)
    striped[:, :16] = 200  # the top half bright
    top, bottom = downscale(striped, 24)[0, :12], downscale(striped, 24)[0, 12:]
    assert (top == 200).all() and (bottom == 0).all()


def test_progressive_resizing_scales_down_the_augmented_batch() -> None:
    """An epoch of a phase is the full-size epoch (the same images, flips and
    shifts) scaled down; the epochs after the phases are full size."""
    resized = batches("alternating", 2, sizes=(16, 32))
    full = batches("alternating", 2)
    small, labels = resized.batch(0, 1)
    expected, expected_labels = full.batch(0, 1)
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_array_equal(small, downscale(expected, 16))
    np.testing.assert_array_equal(resized.batch(1, 1)[0], full.batch(1, 1)[0])
    assert resized.batch(2, 0)[0].shape[1:] == (32, 32, 3)  # past the schedule


def test_fit_inputs_feed_each_epoch_at_its_size() -> None:
    resized = batches(sizes=(16, 24))
    dataset = resized.fit_inputs(0, 3)["x"]
    sides = [int(images.shape[1]) for images, _ in dataset]
    steps = resized.steps_per_epoch
    assert sides == [16] * steps + [24] * steps + [32] * steps
    # The spatial sides are open, so fit traces its step once for every size.
    assert tuple(dataset.element_spec[0].shape) == (None, None, None, 3)
    assert tuple(batches().fit_inputs(0, 1)["x"].element_spec[0].shape) == (
        None,
        32,
        32,
        3,
    )
