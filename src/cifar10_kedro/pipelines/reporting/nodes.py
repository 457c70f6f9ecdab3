"""Nodes that evaluate the best model on the test set and draw the report plots."""

from __future__ import annotations

import math
import re
from typing import Any

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.metrics import (
    classification_report,
    confusion_matrix,
    log_loss,
)

from cifar10_kedro.prediction import predict_probabilities

from .params import ReportingParams, TemperatureParams, TTAParams

# A test-time view of an image: (dy, dx, mirrored).
View = tuple[int, int, bool]


def _shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Return ``images`` moved by (dy, dx) pixels, the border filled by reflection."""
    pad = max(abs(dy), abs(dx))
    if pad == 0:
        return images
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    h, w = images.shape[1:3]
    return padded[:, pad - dy : pad - dy + h, pad - dx : pad - dx + w]


def tta_views(tta: TTAParams) -> dict[View, float]:
    """Return the test-time views and their weights.

    The image itself (weight 1), its ``tta.shifts`` diagonal shifts by
    ``tta.translate`` pixels (weight 1/2 each) if that is above 0, and the mirror of
    each if ``tta.flip``.
    """
    views = {(0, 0, False): 1.0}
    s = tta.translate
    if s:
        # The first two, one diagonal, are airbench's.
        corners = [(-s, -s), (s, s), (-s, s), (s, -s)][: tta.shifts]
        views |= {(dy, dx, False): 0.5 for dy, dx in corners}
    if tta.flip:
        views |= {(dy, dx, True): w for (dy, dx, _), w in views.items()}
    return views


def predict_views(
    model: keras.Model, images: np.ndarray, views: list[View], batch_size: int
) -> dict[View, np.ndarray]:
    """Return the model's class probabilities for each view of ``images``."""
    result = {}
    for dy, dx, mirrored in views:
        shifted = _shifted(images, dy, dx)
        batch = shifted[:, :, ::-1] if mirrored else shifted
        result[(dy, dx, mirrored)] = predict_probabilities(model, batch, batch_size)
    return result


def combine_views(predictions: dict[View, np.ndarray], tta: TTAParams) -> np.ndarray:
    """Return the weighted mean of the predictions over ``tta``'s views."""
    weights = tta_views(tta)
    total = sum(w * predictions[view] for view, w in weights.items())
    return total / sum(weights.values())


def predict_test(
    model: keras.Model, x_test: np.ndarray, params: ReportingParams
) -> dict[str, np.ndarray]:
    """Return test-set class probabilities: 'plain', and 'tta' when views are on.

    'tta' is the weighted mean of the probabilities over ``tta_views(params.tta)``.
    """
    views = predict_views(model, x_test, list(tta_views(params.tta)), params.batch_size)
    probabilities = {"plain": views[(0, 0, False)]}
    if len(views) > 1:
        probabilities["tta"] = combine_views(views, params.tta)
    return probabilities


def scores(
    probabilities: np.ndarray, y_true: np.ndarray, bins: int
) -> dict[str, float]:
    """Return accuracy, log loss (plain cross-entropy, no label smoothing) and the
    expected calibration error."""
    labels = list(range(probabilities.shape[1]))
    return {
        "accuracy": float(np.mean(probabilities.argmax(axis=1) == y_true)),
        "log_loss": float(log_loss(y_true, probabilities, labels=labels)),
        "expected_calibration_error": calibration(probabilities, y_true, bins)[
            "expected_calibration_error"
        ],
    }


def calibration(
    probabilities: np.ndarray, y_true: np.ndarray, bins: int
) -> dict[str, Any]:
    """Return the reliability table and the expected calibration error (ECE).

    Predictions are grouped by confidence into ``bins`` equal-width bins; the ECE is
    the mean gap between each bin's accuracy and confidence, weighted by its size.
    """
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    table = []
    gap = 0.0
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        accuracy = float(correct[inside].mean()) if count else float("nan")
        mean_confidence = float(confidence[inside].mean()) if count else float("nan")
        if count:
            gap += count * abs(accuracy - mean_confidence)
        table.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": count,
                "accuracy": accuracy,
                "confidence": mean_confidence,
            }
        )
    return {"bins": table, "expected_calibration_error": gap / max(len(y_true), 1)}


def evaluate_predictions(
    probabilities: dict[str, np.ndarray],
    y_test: np.ndarray,
    class_names: list[str],
    temperature_scaling: dict[str, Any],
    params: ReportingParams,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Return (metrics, classification report table, per-image predictions table).

    The metrics' ``log_loss`` is the plain cross-entropy of the predicted
    probabilities; the training history's ``loss`` is the training objective, label
    smoothing included, so the two are not comparable. ``temperature_scaled`` holds
    the plain predictions' scores with the validation split's temperature applied.
    """
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
    bins = params.calibration_bins
    metrics: dict[str, Any] = {
        "num_test_images": int(y_test.size),
        **scores(plain, y_test, bins),
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
        metrics["tta"] = {
            **scores(probabilities["tta"], y_test, bins),
            "views": len(tta_views(params.tta)),
        }
    temperature = temperature_scaling["temperature"]
    metrics["temperature_scaled"] = {
        **scores(scale_temperature(plain, temperature), y_test, bins),
        "temperature": temperature,
    }
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


def predict_validation(
    model: keras.Model, x_val: np.ndarray, params: ReportingParams
) -> np.ndarray:
    """Return the validation split's class probabilities (plain, no augmentation)."""
    return predict_probabilities(model, x_val, params.batch_size)


def evaluate_validation(
    probabilities: np.ndarray, y_val: np.ndarray, params: ReportingParams
) -> dict[str, Any]:
    """Return the plain validation scores: accuracy, log loss and calibration error
    (the test-time augmentation is chosen on validation by the ``tta_selection``
    pipeline, once, not in every run)."""
    return {
        "num_validation_images": int(y_val.size),
        **scores(probabilities, y_val, params.calibration_bins),
    }


def scale_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Return ``probabilities`` with their logits divided by ``temperature``
    (softmax(log p / T): the logits up to a constant per image, which softmax drops)."""
    logits = np.log(np.clip(probabilities, np.finfo(np.float32).tiny, None))
    return softmax(logits / temperature, axis=1)


def fit_temperature(
    probabilities: np.ndarray, y_val: np.ndarray, params: ReportingParams
) -> dict[str, Any]:
    """Return the temperature that minimises the validation log loss (temperature
    scaling, Guo et al. 2017), searched in ``params.temperature``, with the validation
    scores before and after. Accuracy is unchanged: dividing the logits keeps their
    order."""
    bounds: TemperatureParams = params.temperature
    logits = np.log(np.clip(probabilities, np.finfo(np.float32).tiny, None))
    labels = y_val.astype(int)

    def nll(log_t: float) -> float:
        scaled = log_softmax(logits / np.exp(log_t), axis=1)
        return float(-scaled[np.arange(labels.size), labels].mean())

    found = minimize_scalar(
        nll,
        bounds=(np.log(bounds.min), np.log(bounds.max)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    temperature = float(np.exp(found.x))
    bins = params.calibration_bins
    return {
        "temperature": temperature,
        "fitted_on": "validation",
        "num_images": int(labels.size),
        "before": scores(probabilities, labels, bins),
        "after": scores(scale_temperature(probabilities, temperature), labels, bins),
    }


def _best_epoch(history: pd.DataFrame) -> int:
    """Return the epoch of the returned model (the history's ``best`` row)."""
    marked = history.loc[history["best"].astype(bool), "epoch"]
    return int(marked.iloc[0]) if len(marked) else int(history["epoch"].iloc[-1])


# A curve whose values span more than this ratio is drawn on a log scale.
_LOG_SCALE_RATIO = 100


def _curve(history: pd.DataFrame, column: str, label: str) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    ax.plot(history["epoch"], history[column], marker="o", label=f"train {label}")
    ax.plot(
        history["epoch"],
        history[f"val_{column}"],
        marker="o",
        label=f"validation {label}",
    )
    best = _best_epoch(history)
    ax.axvline(
        best, color="grey", linestyle="--", label=f"returned model (epoch {best})"
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


def plot_training_curves(history: pd.DataFrame) -> tuple[Figure, Figure]:
    """Return the loss and accuracy curves, train and validation, with the epoch of
    the returned model (the history's ``best`` column) marked.

    The loss is the training objective (label smoothing included, if any).
    """
    return (
        _curve(history, "loss", "loss (training objective)"),
        _curve(history, "accuracy", "accuracy"),
    )


def plot_reliability_diagram(
    probabilities: dict[str, np.ndarray],
    y_test: np.ndarray,
    temperature_scaling: dict[str, Any],
    params: ReportingParams,
) -> Figure:
    """Return the reliability diagram of the test predictions (plain, TTA when on, and
    plain with the validation split's temperature): accuracy against confidence per
    bin, with the expected calibration error."""
    fig, ax = plt.subplots(figsize=(6.5, 6), layout="constrained")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    temperature = temperature_scaling["temperature"]
    scaled = scale_temperature(probabilities["plain"], temperature)
    shown = {**probabilities, f"plain, temperature {temperature:.2f}": scaled}
    for name, probs in shown.items():
        table = calibration(probs, y_test, params.calibration_bins)
        bins = [b for b in table["bins"] if b["count"]]
        ax.plot(
            [b["confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            marker="o",
            label=f"{name} (ECE {table['expected_calibration_error']:.3f})",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (mean of the bin)")
    ax.set_ylabel("accuracy in the bin")
    ax.set_title(f"Reliability on the test set ({params.calibration_bins} bins)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    return fig


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
    x_test: np.ndarray,
    predictions: pd.DataFrame,
    class_names: list[str],
    params: ReportingParams,
) -> Figure:
    """Return a grid of the ``params.mistakes_to_show`` test images misclassified with
    most confidence."""
    count = params.mistakes_to_show
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


def _figures(prefix: str, figures: dict[str, Any]) -> dict[str, float]:
    found = {
        f"{prefix}_accuracy": figures.get("accuracy"),
        f"{prefix}_log_loss": figures.get("log_loss"),
        f"{prefix}_ece": figures.get("expected_calibration_error"),
    }
    return {k: float(v) for k, v in found.items() if v is not None}


def run_scores(
    test_metrics: dict[str, Any], validation_metrics: dict[str, Any]
) -> dict[str, float]:
    """Return the run's final figures by name, for the experiment tracker: on the
    test set plain (``test_accuracy``, ``test_log_loss``, ``test_ece``), with
    test-time augmentation (``test_tta_*``) and temperature scaling
    (``test_temperature_scaled_*``), the macro and per-class F1 (``test_macro_f1``,
    ``test_f1_<class>``), and the plain figures on the validation split
    (``validation_*``). Figures that are not finite are left
    out."""
    values = _figures("test", test_metrics)
    if "tta" in test_metrics:
        values |= _figures("test_tta", test_metrics["tta"])
    if "temperature_scaled" in test_metrics:
        values |= _figures(
            "test_temperature_scaled", test_metrics["temperature_scaled"]
        )
    if "macro_avg" in test_metrics:
        values["test_macro_f1"] = float(test_metrics["macro_avg"]["f1-score"])
    for name, per_class in test_metrics.get("per_class", {}).items():
        # An MLflow metric name: letters, digits and _ - . / only.
        values[re.sub(r"[^\w\-./]", "_", f"test_f1_{name}")] = float(
            per_class["f1-score"]
        )
    values |= _figures("validation", validation_metrics)
    return {name: value for name, value in values.items() if math.isfinite(value)}
