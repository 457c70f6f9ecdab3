"""Nodes that turn raw CIFAR-10 into validated, split uint8 arrays and a first look."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from sklearn.model_selection import train_test_split

from .params import DataIngestionParams

NUM_CLASSES = 10
IMAGE_SHAPE = (32, 32, 3)


def _check_split(name: str, x: Any, y: Any, num_classes: int) -> None:
    """Raise ValueError naming ``name`` if images or labels are malformed."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:  # noqa: PLR2004
        raise ValueError(
            f"{name}: images have shape {x.shape}; expected (N, 32, 32, 3)."
        )
    if x.dtype != np.uint8:
        raise ValueError(f"{name}: images have dtype {x.dtype}; expected uint8.")
    if y.shape != (x.shape[0],):
        raise ValueError(
            f"{name}: labels have shape {y.shape}; expected ({x.shape[0]},), one per image."
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name}: labels have dtype {y.dtype}; expected integers.")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        bad = np.unique(y[(y < 0) | (y >= num_classes)])[:10].tolist()
        raise ValueError(f"{name}: labels {bad} are outside 0..{num_classes - 1}.")
    missing = sorted(set(range(num_classes)) - set(np.unique(y).tolist()))
    if missing:
        raise ValueError(
            f"{name}: classes {missing} have no images; every split needs all "
            f"{num_classes} classes."
        )


def validate_raw_data(
    raw: dict[str, Any], params: DataIngestionParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Return (x_train, y_train, x_test, y_test, class_names) after checking them.

    It also makes sure, on the labels alone, that subsampling and the validation
    split will keep every class in both splits: this node runs first, so bad data
    fails before any output is written.
    """
    expected = {"x_train", "y_train", "x_test", "y_test", "class_names"}
    if not isinstance(raw, dict) or not expected <= set(raw):
        found = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise ValueError(
            f"Raw CIFAR-10 has {found}; expected the keys {sorted(expected)}."
        )
    class_names = [str(c) for c in raw["class_names"]]
    if len(class_names) != NUM_CLASSES:
        raise ValueError(
            f"Raw CIFAR-10 names {len(class_names)} classes; expected {NUM_CLASSES}."
        )
    for split in ("train", "test"):
        _check_split(split, raw[f"x_{split}"], raw[f"y_{split}"], NUM_CLASSES)
    y = np.asarray(raw["y_train"])
    _, y_kept = subsample_per_class(
        np.arange(y.size), y, params.train_per_class, params.seed
    )
    _split_indices(y_kept, params.validation_fraction, params.seed)
    return (
        raw["x_train"],
        np.asarray(raw["y_train"]).astype(np.uint8),
        raw["x_test"],
        np.asarray(raw["y_test"]).astype(np.uint8),
        class_names,
    )


def subsample_per_class(
    x: np.ndarray, y: np.ndarray, per_class: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return at most ``per_class`` images of each class (all when None), order kept."""
    if per_class is None:
        return x, y
    rng = np.random.default_rng(seed)
    keep = np.concatenate(
        [
            rng.permutation(np.flatnonzero(y == label))[:per_class]
            for label in np.unique(y)
        ]
    )
    keep.sort()
    return x[keep], y[keep]


def subsample_train(
    x: np.ndarray, y: np.ndarray, params: DataIngestionParams
) -> tuple[np.ndarray, np.ndarray]:
    """Return the training images kept by ``params.train_per_class``."""
    return subsample_per_class(x, y, params.train_per_class, params.seed)


def subsample_test(
    x: np.ndarray, y: np.ndarray, params: DataIngestionParams
) -> tuple[np.ndarray, np.ndarray]:
    """Return the test images kept by ``params.test_per_class``."""
    return subsample_per_class(x, y, params.test_per_class, params.seed)


def _split_indices(
    y: np.ndarray, validation_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return (train, validation) indices of a stratified split with every class in each."""
    try:
        train, val = train_test_split(
            np.arange(y.size),
            test_size=validation_fraction,
            random_state=seed,
            stratify=y,
        )
    except ValueError as exc:
        raise ValueError(
            f"data_ingestion.validation_fraction={validation_fraction} cannot split "
            f"{y.size} training images into stratified train and validation sets "
            f"with every class in each: {exc}"
        ) from exc
    for name, index in (
        ("train (after the validation split)", train),
        ("validation", val),
    ):
        missing = sorted(set(range(NUM_CLASSES)) - set(np.unique(y[index]).tolist()))
        if missing:
            raise ValueError(
                f"{name}: classes {missing} have no images; every split needs all "
                f"{NUM_CLASSES} classes. data_ingestion.validation_fraction="
                f"{validation_fraction} of {y.size} training images leaves them out; "
                "expected at least one image of each class on both sides: use another "
                "validation_fraction, or more images of those classes "
                "(data_ingestion.train_per_class, the raw data)."
            )
    return train, val


def split_train_validation(
    x: np.ndarray, y: np.ndarray, params: DataIngestionParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (x_train, y_train, x_val, y_val), a stratified split of the training set."""
    train, val = _split_indices(np.asarray(y), params.validation_fraction, params.seed)
    x_train, y_train, x_val, y_val = x[train], y[train], x[val], y[val]
    _check_split("train (after the validation split)", x_train, y_train, NUM_CLASSES)
    _check_split("validation", x_val, y_val, NUM_CLASSES)
    return x_train, y_train, x_val, y_val


def summarize_dataset(
    y_train: np.ndarray,
    y_val: np.ndarray,
    y_test: np.ndarray,
    x_train: np.ndarray,
    class_names: list[str],
) -> dict[str, Any]:
    """Return per-class counts and shapes of each split, for JSON."""
    splits = {"train": y_train, "validation": y_val, "test": y_test}
    return {
        "image_shape": list(x_train.shape[1:]),
        "dtype": str(x_train.dtype),
        "class_names": list(class_names),
        "splits": {
            name: {
                "num_images": int(labels.size),
                "per_class": {
                    cls: int(np.sum(labels == i)) for i, cls in enumerate(class_names)
                },
            }
            for name, labels in splits.items()
        },
    }


def plot_sample_grid(
    x: np.ndarray, y: np.ndarray, class_names: list[str], params: DataIngestionParams
) -> Figure:
    """Return the notebook's grid: the first ``params.sample_grid_per_class``
    training images of each class."""
    per_class = params.sample_grid_per_class
    fig, axes = plt.subplots(
        per_class,
        len(class_names),
        figsize=(1.5 * len(class_names), 1.6 * per_class + 0.6),
        squeeze=False,
    )
    for label, cls in enumerate(class_names):
        index = np.flatnonzero(y == label)[:per_class]
        for row in range(per_class):
            ax = axes[row, label]
            ax.set_xticks([])
            ax.set_yticks([])
            if row < index.size:
                ax.imshow(x[index[row]])
            if row == 0:
                ax.set_title(cls, fontsize=11)
    fig.suptitle(f"CIFAR-10 training images, {per_class} per class", fontsize=14)
    fig.tight_layout()
    return fig
