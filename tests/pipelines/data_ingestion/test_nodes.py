"""Tests for the data_ingestion nodes on tiny random uint8 arrays."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from cifar10_kedro.params_base import InvalidParametersError
from cifar10_kedro.pipelines.data_ingestion.nodes import (
    plot_sample_grid,
    split_train_validation,
    subsample_per_class,
    subsample_test,
    subsample_train,
    summarize_dataset,
    validate_raw_data,
)
from cifar10_kedro.pipelines.data_ingestion.params import DataIngestionParams
from tests.conftest import OFFICIAL_CLASS_NAMES, base_params

CLASS_NAMES = OFFICIAL_CLASS_NAMES


def params(**values) -> DataIngestionParams:
    """conf/base's data_ingestion parameters with ``values``, validated as Kedro
    validates them."""
    return base_params("data_ingestion", values)


# The raw fixture's 50 training images split 80/20 with every class on both sides.
FITS = params(validation_fraction=0.2)


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def balanced_labels(per_class: int, seed: int = 0) -> np.ndarray:
    """Labels with ``per_class`` of each class, shuffled."""
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(10), per_class))


@pytest.fixture
def raw() -> dict[str, object]:
    return {
        "x_train": images(50, seed=1),
        "y_train": balanced_labels(5, seed=1).astype(np.int64),
        "x_test": images(20, seed=2),
        "y_test": balanced_labels(2, seed=2).astype(np.int64),
        "class_names": list(CLASS_NAMES),
    }


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------- validate_raw_data


def test_validate_raw_data_returns_arrays_and_names(raw) -> None:
    x_train, y_train, x_test, y_test, names = validate_raw_data(raw, FITS)
    assert x_train is raw["x_train"]
    assert x_test is raw["x_test"]
    np.testing.assert_array_equal(y_train, raw["y_train"])
    np.testing.assert_array_equal(y_test, raw["y_test"])
    assert y_train.dtype == np.uint8
    assert y_test.dtype == np.uint8
    assert names == CLASS_NAMES


@pytest.mark.parametrize("split", ["train", "test"])
def test_validate_raw_data_wrong_shape(raw, split: str) -> None:
    raw[f"x_{split}"] = raw[f"x_{split}"][:, :16, :16, :]
    with pytest.raises(
        ValueError, match=rf"^{split}: images have shape .*\(N, 32, 32, 3\)"
    ):
        validate_raw_data(raw, FITS)


def test_validate_raw_data_channel_first_is_rejected(raw) -> None:
    raw["x_train"] = np.ascontiguousarray(raw["x_train"].transpose(0, 3, 1, 2))
    with pytest.raises(
        ValueError, match=r"^train: images have shape \(50, 3, 32, 32\)"
    ):
        validate_raw_data(raw, FITS)


@pytest.mark.parametrize("split", ["train", "test"])
def test_validate_raw_data_wrong_dtype(raw, split: str) -> None:
    raw[f"x_{split}"] = raw[f"x_{split}"].astype(np.float32) / 255.0
    with pytest.raises(
        ValueError, match=rf"^{split}: images have dtype float32; expected uint8"
    ):
        validate_raw_data(raw, FITS)


@pytest.mark.parametrize(("split", "bad"), [("train", 10), ("test", -1)])
def test_validate_raw_data_labels_out_of_range(raw, split: str, bad: int) -> None:
    raw[f"y_{split}"] = raw[f"y_{split}"].copy()
    raw[f"y_{split}"][0] = bad
    with pytest.raises(
        ValueError, match=rf"^{split}: labels \[{bad}\] are outside 0..9"
    ):
        validate_raw_data(raw, FITS)


@pytest.mark.parametrize("split", ["train", "test"])
def test_validate_raw_data_missing_class(raw, split: str) -> None:
    y = raw[f"y_{split}"].copy()
    y[y == 7] = 3
    raw[f"y_{split}"] = y
    with pytest.raises(ValueError, match=rf"^{split}: classes \[7\] have no images"):
        validate_raw_data(raw, FITS)


def test_validate_raw_data_label_count_mismatch(raw) -> None:
    raw["y_test"] = raw["y_test"][:-1]
    with pytest.raises(
        ValueError, match=r"^test: labels have shape \(19,\); expected \(20,\)"
    ):
        validate_raw_data(raw, FITS)


def test_validate_raw_data_float_labels(raw) -> None:
    raw["y_train"] = raw["y_train"].astype(np.float64)
    with pytest.raises(
        ValueError, match=r"^train: labels have dtype float64; expected integers"
    ):
        validate_raw_data(raw, FITS)


def test_validate_raw_data_missing_key(raw) -> None:
    del raw["y_test"]
    with pytest.raises(ValueError, match=r"expected the keys .*'y_test'"):
        validate_raw_data(raw, FITS)


def test_validate_raw_data_wrong_class_count(raw) -> None:
    raw["class_names"] = CLASS_NAMES[:9]
    with pytest.raises(ValueError, match="names 9 classes; expected 10"):
        validate_raw_data(raw, FITS)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"seed": 0, "validation_fraction": 0.1, "train_per_class": None},
            r"validation_fraction=0.1 cannot split 50 training images .*"
            r"greater or equal to the number of classes",
        ),
        (
            {"seed": 0, "validation_fraction": 0.5, "train_per_class": 1},
            r"validation_fraction=0.5 cannot split 10 training images .*"
            r"least populated class",
        ),
    ],
    ids=["too-few-validation-images", "one-image-per-class-after-subsampling"],
)
def test_validate_raw_data_checks_the_coming_split(raw, values, message) -> None:
    """The first node fails for a split that would lose a class, before any save."""
    with pytest.raises(ValueError, match=message):
        validate_raw_data(raw, params(**values))


def test_validate_raw_data_checks_the_split_on_the_same_images(raw) -> None:
    """The check splits exactly as the next nodes will: a split that keeps every
    class passes, and the node's outputs do not depend on the parameters."""
    chosen = params(seed=3, validation_fraction=0.25, train_per_class=4)
    with_check = validate_raw_data(raw, chosen)
    for left, right in zip(with_check, validate_raw_data(raw, FITS), strict=True):
        np.testing.assert_array_equal(left, right)
    x, y = subsample_train(with_check[0], with_check[1], chosen)
    _, y_train, _, y_val = split_train_validation(x, y, chosen)
    assert set(y_train) == set(y_val) == set(range(10))


# -------------------------------------------------------------- subsample_per_class


def test_subsample_per_class_counts_and_order() -> None:
    y = balanced_labels(8)
    x = images(len(y))
    xs, ys = subsample_per_class(x, y, 3, seed=0)
    np.testing.assert_array_equal(np.bincount(ys, minlength=10), [3] * 10)
    # The kept images are the originals, in their original order.
    kept = [int(np.flatnonzero((x == image).all(axis=(1, 2, 3)))[0]) for image in xs]
    assert kept == sorted(kept)
    np.testing.assert_array_equal(y[kept], ys)


def test_subsample_per_class_keeps_small_classes_whole() -> None:
    y = np.concatenate([np.repeat(np.arange(10), 4), [0, 0, 0, 0]])
    x = images(len(y))
    _, ys = subsample_per_class(x, y, 6, seed=0)
    np.testing.assert_array_equal(np.bincount(ys, minlength=10), [6] + [4] * 9)


def test_subsample_per_class_deterministic_by_seed() -> None:
    y = balanced_labels(20)
    x = images(len(y))
    a = subsample_per_class(x, y, 5, seed=7)
    b = subsample_per_class(x, y, 5, seed=7)
    c = subsample_per_class(x, y, 5, seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_subsample_per_class_none_keeps_everything() -> None:
    y = balanced_labels(3)
    x = images(len(y))
    xs, ys = subsample_per_class(x, y, None, seed=0)
    assert xs is x
    assert ys is y


def test_subsample_train_and_test_follow_their_own_parameter() -> None:
    y = balanced_labels(8)
    x = images(len(y))
    chosen = params(seed=5, train_per_class=3, test_per_class=2)
    xs, ys = subsample_train(x, y, chosen)
    np.testing.assert_array_equal(np.bincount(ys, minlength=10), [3] * 10)
    expected = subsample_per_class(x, y, 3, seed=5)
    np.testing.assert_array_equal(xs, expected[0])
    np.testing.assert_array_equal(ys, expected[1])
    _, ys = subsample_test(x, y, chosen)
    np.testing.assert_array_equal(np.bincount(ys, minlength=10), [2] * 10)
    # null keeps every image, each split on its own.
    xs, ys = subsample_test(x, y, params(train_per_class=3))
    assert xs is x
    assert ys is y


@pytest.mark.parametrize("key", ["train_per_class", "test_per_class"])
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (0, "Input should be greater than 0; got 0"),
        (-2, "Input should be greater than 0; got -2"),
        (2.5, "Input should be a valid integer; got 2.5"),
        ("5", "Input should be a valid integer; got '5'"),
        (True, "Input should be a valid integer; got True"),
    ],
)
def test_subset_sizes_are_checked_by_the_parameters(key, bad, message) -> None:
    """The nodes trust their typed parameters: a bad size never reaches them."""
    with pytest.raises(InvalidParametersError) as info:
        params(**{key: bad})
    assert str(info.value) == f"  - {key}: {message}"


# ----------------------------------------------------------- split_train_validation


def test_split_train_validation_stratified_disjoint_complete() -> None:
    y = balanced_labels(20)
    x = images(len(y))
    # Mark every image with its index so that membership can be traced exactly.
    x[:, 0, 0, 0] = np.arange(len(y))
    x_train, y_train, x_val, y_val = split_train_validation(
        x, y, params(validation_fraction=0.25, seed=3)
    )

    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), [15] * 10)
    np.testing.assert_array_equal(np.bincount(y_val, minlength=10), [5] * 10)
    train_ids = x_train[:, 0, 0, 0].astype(int)
    val_ids = x_val[:, 0, 0, 0].astype(int)
    assert set(train_ids).isdisjoint(val_ids)
    assert sorted([*train_ids, *val_ids]) == list(range(len(y)))
    np.testing.assert_array_equal(y[train_ids], y_train)
    np.testing.assert_array_equal(y[val_ids], y_val)
    np.testing.assert_array_equal(x[val_ids], x_val)


def test_split_train_validation_keeps_class_proportions() -> None:
    counts = np.array([40, 20, 20, 20, 20, 20, 20, 20, 20, 60])
    y = np.random.default_rng(0).permutation(np.repeat(np.arange(10), counts))
    _, y_train, _, y_val = split_train_validation(
        images(len(y)), y, params(validation_fraction=0.1, seed=0)
    )
    np.testing.assert_array_equal(np.bincount(y_val, minlength=10), counts // 10)
    np.testing.assert_array_equal(
        np.bincount(y_train, minlength=10), counts - counts // 10
    )


def test_split_train_validation_deterministic() -> None:
    y = balanced_labels(10)
    x = images(len(y))
    a = split_train_validation(x, y, params(validation_fraction=0.2, seed=1))
    b = split_train_validation(x, y, params(validation_fraction=0.2, seed=1))
    c = split_train_validation(x, y, params(validation_fraction=0.2, seed=2))
    for left, right in zip(a, b, strict=True):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(a[2], c[2])


@pytest.mark.parametrize(
    ("fraction", "message"),
    [
        (0, "Input should be greater than 0; got 0"),
        (0.0, "Input should be greater than 0; got 0.0"),
        (-0.1, "Input should be greater than 0; got -0.1"),
        (1, "Input should be less than 1; got 1"),
        (1.0, "Input should be less than 1; got 1.0"),
        (1.5, "Input should be less than 1; got 1.5"),
        ("0.2", "Input should be a valid number; got '0.2'"),
    ],
)
def test_validation_fraction_out_of_range_is_refused(fraction, message) -> None:
    with pytest.raises(InvalidParametersError) as info:
        params(validation_fraction=fraction)
    assert str(info.value) == f"  - validation_fraction: {message}"


def test_split_train_validation_class_missing_after_split() -> None:
    # 91 airplanes and 2 of every other class: a 10 % stratified validation split
    # rounds most of the small classes down to zero images.
    y = np.concatenate([np.zeros(91, dtype=int), np.repeat(np.arange(1, 10), 2)])
    with pytest.raises(
        ValueError,
        match=r"^validation: classes \[2, 3, 4, 5, 7, 8, 9\] have no images; "
        r"every split needs all 10 classes",
    ):
        split_train_validation(
            images(len(y)), y, params(validation_fraction=0.1, seed=0)
        )


@pytest.mark.parametrize(
    ("y", "fraction", "message"),
    [
        (
            np.repeat(np.arange(10), 3),
            5 / 30,
            "should be greater or equal to the number of classes",
        ),
        (
            np.concatenate([np.repeat(np.arange(9), 3), [9]]),
            0.5,
            "least populated class",
        ),
    ],
    ids=["fewer-validation-images-than-classes", "class-with-one-image"],
)
def test_split_train_validation_too_few_images_raise(y, fraction, message) -> None:
    with pytest.raises(ValueError, match=message):
        split_train_validation(
            images(len(y)), y, params(validation_fraction=fraction, seed=0)
        )


# ---------------------------------------------------------------- summarize_dataset


def test_summarize_dataset_counts() -> None:
    y_train = np.repeat(np.arange(10), 3)
    y_val = np.arange(10)
    y_test = np.concatenate([np.arange(10), [9, 9]])
    summary = summarize_dataset(y_train, y_val, y_test, images(30), CLASS_NAMES)

    assert summary["image_shape"] == [32, 32, 3]
    assert summary["dtype"] == "uint8"
    assert summary["class_names"] == CLASS_NAMES
    assert summary["splits"]["train"]["num_images"] == 30
    assert summary["splits"]["validation"]["num_images"] == 10
    assert summary["splits"]["test"]["num_images"] == 12
    assert summary["splits"]["train"]["per_class"] == dict.fromkeys(CLASS_NAMES, 3)
    assert summary["splits"]["test"]["per_class"]["truck"] == 3
    assert summary["splits"]["test"]["per_class"]["cat"] == 1
    # Plain Python ints so that the JSON dataset can write it.
    assert type(summary["splits"]["test"]["per_class"]["truck"]) is int


# ------------------------------------------------------------------ plot_sample_grid


def test_plot_sample_grid_layout_and_titles() -> None:
    y = balanced_labels(6)
    x = images(len(y))
    fig = plot_sample_grid(x, y, CLASS_NAMES, params(sample_grid_per_class=5))

    assert isinstance(fig, Figure)
    assert len(fig.axes) == 50
    grid = np.array(fig.axes).reshape(5, 10)
    assert [ax.get_title() for ax in grid[0]] == CLASS_NAMES
    assert all(ax.get_title() == "" for ax in grid[1:].flat)
    assert all(len(ax.get_images()) == 1 for ax in fig.axes)
    # Column "cat", row 1 shows the second cat image.
    second_cat = np.flatnonzero(y == 3)[1]
    np.testing.assert_array_equal(grid[1, 3].get_images()[0].get_array(), x[second_cat])
    assert "5 per class" in fig._suptitle.get_text()


def test_plot_sample_grid_fewer_images_than_rows() -> None:
    y = np.concatenate([np.repeat(np.arange(10), 2), [4, 4, 4]])
    fig = plot_sample_grid(
        images(len(y)), y, CLASS_NAMES, params(sample_grid_per_class=5)
    )
    grid = np.array(fig.axes).reshape(5, 10)
    assert [len(ax.get_images()) for ax in grid[:, 0]] == [1, 1, 0, 0, 0]
    assert [len(ax.get_images()) for ax in grid[:, 4]] == [1, 1, 1, 1, 1]


def test_plot_sample_grid_rows_follow_the_parameter() -> None:
    y = balanced_labels(4)
    fig = plot_sample_grid(
        images(len(y)), y, CLASS_NAMES, params(sample_grid_per_class=3)
    )
    assert len(fig.axes) == 30
    assert all(len(ax.get_images()) == 1 for ax in fig.axes)
    assert "3 per class" in fig._suptitle.get_text()
