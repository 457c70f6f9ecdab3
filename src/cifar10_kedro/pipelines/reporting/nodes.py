"""Nodes that evaluate the best model on the test set and draw the report plots."""

from __future__ import annotations

from typing import Any

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import (
    classification_report,
    confusion_matrix,
    log_loss,
)


def _shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Return ``images`` moved by (dy, dx) pixels, the border filled by reflection."""
    pad = max(abs(dy), abs(dx))
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    h, w = images.shape[1:3]
    return padded[:, pad - dy : pad - dy + h, pad - dx : pad - dx + w]


def tta_views(params: dict[str, Any]) -> list[tuple[float, int, int, bool]]:
    """Return the test-time views as (weight, dy, dx, mirrored).

    The image itself (weight 1), its four diagonal shifts by ``tta_translate`` pixels
    (weight 1/2 each) if that is above 0, and the mirror of each if ``tta_flip``.
    """
    views = [(1.0, 0, 0, False)]
    shift = params.get("tta_translate", 0)
    if shift:
        views += [
            (0.5, dy, dx, False) for dy in (-shift, shift) for dx in (-shift, shift)
        ]
    if params.get("tta_flip", False):
        views += [(w, dy, dx, True) for w, dy, dx, _ in views]
    return views


def predict_test(
    model: keras.Model, x_test: np.ndarray, params: dict[str, Any]
) -> dict[str, np.ndarray]:
    """Return test-set class probabilities: 'plain', and 'tta' when views are on.

    'tta' is the weighted mean of the probabilities over ``tta_views(params)``.
    """
    batch_size = params["batch_size"]

    def predict(images: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(images, batch_size=batch_size, verbose=0))

    plain = predict(x_test)
    probabilities = {"plain": plain}
    views = tta_views(params)
    if len(views) > 1:
        total = np.zeros_like(plain)
        for weight, dy, dx, mirrored in views:
            if (dy, dx, mirrored) == (0, 0, False):
                total += weight * plain
                continue
            images = _shifted(x_test, dy, dx)
            total += weight * predict(images[:, :, ::-1] if mirrored else images)
        probabilities["tta"] = total / sum(weight for weight, *_ in views)
    return probabilities


def _loss_and_accuracy(
    probabilities: np.ndarray, y_true: np.ndarray
) -> dict[str, float]:
    labels = list(range(probabilities.shape[1]))
    return {
        "loss": float(log_loss(y_true, probabilities, labels=labels)),
        "accuracy": float(np.mean(probabilities.argmax(axis=1) == y_true)),
    }


def evaluate_predictions(
    probabilities: dict[str, np.ndarray], y_test: np.ndarray, class_names: list[str]
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Return (metrics, classification report table, per-image predictions table)."""
    plain = probabilities["plain"]
    y_pred = plain.argmax(axis=1)
    report = classification_report(
        y_test,
        y_pred,
        labels=list(range(len(class_names))),
        target_names=class_names,
        output_dict=True,
        zero_division=0,
    )
    metrics: dict[str, Any] = {
        "num_test_images": int(y_test.size),
        **_loss_and_accuracy(plain, y_test),
        "per_class": {
            cls: {k: float(report[cls][k]) for k in ("precision", "recall", "f1-score")}
            for cls in class_names
        },
        "macro_avg": {
            k: float(report["macro avg"][k])
            for k in ("precision", "recall", "f1-score")
        },
    }
    if "tta" in probabilities:
        metrics["tta"] = _loss_and_accuracy(probabilities["tta"], y_test)
    report_table = (
        pd.DataFrame(report)
        .drop(columns="accuracy")
        .transpose()
        .rename_axis("class")
        .reset_index()
    )
    predictions = pd.DataFrame(
        {
            "index": np.arange(y_test.size),
            "true_label": y_test.astype(int),
            "predicted_label": y_pred,
            "confidence": plain.max(axis=1),
            "true_class": [class_names[i] for i in y_test],
            "predicted_class": [class_names[i] for i in y_pred],
        }
    )
    return metrics, report_table, predictions


def _best_epoch(history: pd.DataFrame, monitor: str) -> int:
    """Return the epoch the checkpoint kept by ``monitor``: the first lowest loss, else
    the first highest metric (the rule of ``training_state._better``)."""
    if monitor.endswith("loss"):
        return int(history.loc[history[monitor].idxmin(), "epoch"])
    # The history logs the first metric as 'accuracy' / 'val_accuracy', whatever its name.
    column = "val_accuracy" if monitor.startswith("val_") else "accuracy"
    return int(history.loc[history[column].idxmax(), "epoch"])


# A curve whose values span more than this ratio is drawn on a log scale.
_LOG_SCALE_RATIO = 100


def _curve(history: pd.DataFrame, column: str, label: str, monitor: str) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    ax.plot(history["epoch"], history[column], marker="o", label=f"train {label}")
    ax.plot(
        history["epoch"],
        history[f"val_{column}"],
        marker="o",
        label=f"validation {label}",
    )
    best = _best_epoch(history, monitor)
    ax.axvline(
        best, color="grey", linestyle="--", label=f"best epoch ({best}, by {monitor})"
    )
    ax.set_xlabel("epoch")
    ax.set_ylabel(label)
    # Whole epochs only, even for a run of two or three.
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    title = f"Training and validation {label} per epoch"
    values = history[[column, f"val_{column}"]].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    # A diverging first epoch (e.g. a validation loss in the thousands) would flatten
    # every other point onto the axis: spread values over decades on a log scale.
    if (
        values.size
        and values.min() > 0
        and values.max() / values.min() > _LOG_SCALE_RATIO
    ):
        ax.set_yscale("log")
        title += " (log scale)"
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return fig


def plot_training_curves(
    history: pd.DataFrame, monitor: str = "val_accuracy"
) -> tuple[Figure, Figure]:
    """Return the loss and accuracy curves, train and validation, best epoch marked.

    The marked epoch is the one the checkpoint kept, chosen by ``monitor``.
    """
    return (
        _curve(history, "loss", "loss", monitor),
        _curve(history, "accuracy", "accuracy", monitor),
    )


def plot_confusion_matrix(predictions: pd.DataFrame, class_names: list[str]) -> Figure:
    """Return the test confusion matrix as counts and row-normalised heatmaps."""
    labels = list(range(len(class_names)))
    counts = confusion_matrix(
        predictions["true_label"], predictions["predicted_label"], labels=labels
    )
    normalised = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, axes = plt.subplots(1, 2, figsize=(17, 7.5), layout="constrained")
    for ax, data, fmt, title, vmax in (
        (axes[0], counts, "d", "counts", None),
        (axes[1], normalised, ".2f", "row-normalised (recall per class)", 1.0),
    ):
        sns.heatmap(
            data,
            annot=True,
            fmt=fmt,
            cmap="Blues",
            vmin=0,
            vmax=vmax,
            xticklabels=class_names,
            yticklabels=class_names,
            square=True,
            cbar=True,
            # A colour bar as tall as the square heatmap, whole-number ticks for counts.
            cbar_kws={
                "shrink": 0.8,
                "ticks": MaxNLocator(integer=True) if fmt == "d" else None,
            },
            ax=ax,
        )
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(f"Confusion matrix, {title}")
        plt.setp(ax.get_xticklabels(), rotation=45, ha="right", rotation_mode="anchor")
        ax.tick_params(axis="y", rotation=0)
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    fig.suptitle(
        f"Test set: {counts.sum()} images, accuracy {accuracy:.1%}", fontsize=14
    )
    return fig


def plot_confident_mistakes(
    x_test: np.ndarray, predictions: pd.DataFrame, class_names: list[str], count: int
) -> Figure:
    """Return a grid of the ``count`` test images misclassified with most confidence."""
    wrong = predictions[predictions["true_label"] != predictions["predicted_label"]]
    worst = wrong.sort_values("confidence", ascending=False).head(count)
    columns = 5
    rows = max(1, int(np.ceil(len(worst) / columns)))
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(2.4 * columns, 2.9 * rows + 0.4),
        squeeze=False,
        # Leaves room for each two-line title and the figure title.
        layout="constrained",
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, (_, row) in zip(axes.flat, worst.iterrows(), strict=False):
        ax.imshow(x_test[int(row["index"])])
        ax.set_title(
            f"true: {class_names[int(row['true_label'])]}\n"
            f"pred: {class_names[int(row['predicted_label'])]} ({row['confidence']:.0%})",
            fontsize=9,
        )
    if worst.empty:
        axes[0, 0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    fig.suptitle("Most confident mistakes on the test set", fontsize=13)
    return fig
