"""Tests for the reporting nodes: test-set predictions, metrics and plots."""

from __future__ import annotations

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from cifar10_kedro.pipelines.reporting.nodes import (
    evaluate_predictions,
    plot_confident_mistakes,
    plot_confusion_matrix,
    plot_training_curves,
    predict_test,
    tta_views,
)
from tests.conftest import OFFICIAL_CLASS_NAMES

CLASS_NAMES = OFFICIAL_CLASS_NAMES


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def tiny_model() -> keras.Model:
    """uint8 image -> dense softmax; not mirror-symmetric, so TTA changes outputs."""
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((32, 32, 3), dtype="uint8"),
            keras.layers.Rescaling(1 / 255.0, dtype="float32"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


@pytest.fixture(scope="module")
def x_test() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)


def softmax_of(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(x, training=False))


# --------------------------------------------------------------------- predict_test


def test_predict_test_plain_and_tta(tiny_model, x_test) -> None:
    probabilities = predict_test(
        tiny_model, x_test, {"batch_size": 5, "tta_flip": True}
    )

    assert set(probabilities) == {"plain", "tta"}
    plain, tta = probabilities["plain"], probabilities["tta"]
    assert plain.shape == tta.shape == (12, 10)
    expected_plain = softmax_of(tiny_model, x_test)
    mirrored = softmax_of(tiny_model, x_test[:, :, ::-1, :])
    np.testing.assert_allclose(plain, expected_plain, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        tta, (expected_plain + mirrored) / 2, rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(tta.sum(axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(plain, tta)  # the mirror really was used


def test_predict_test_tta_of_symmetric_images_equals_plain(tiny_model) -> None:
    half = np.random.default_rng(1).integers(0, 256, (3, 32, 16, 3), dtype=np.uint8)
    symmetric = np.concatenate([half, half[:, :, ::-1, :]], axis=2)
    probabilities = predict_test(
        tiny_model, symmetric, {"batch_size": 8, "tta_flip": True}
    )
    np.testing.assert_allclose(probabilities["tta"], probabilities["plain"], rtol=1e-5)


def test_tta_views_flip_and_diagonal_shifts() -> None:
    views = tta_views({"tta_flip": True, "tta_translate": 2})
    assert len(views) == 10
    assert (1.0, 0, 0, False) in views and (1.0, 0, 0, True) in views
    shifted = {(dy, dx) for w, dy, dx, _ in views if w == 0.5}  # noqa: PLR2004
    assert shifted == {(-2, -2), (-2, 2), (2, -2), (2, 2)}
    assert tta_views({"tta_translate": 1, "tta_flip": False})[1:] == [
        (0.5, -1, -1, False),
        (0.5, -1, 1, False),
        (0.5, 1, -1, False),
        (0.5, 1, 1, False),
    ]


def test_predict_test_tta_with_shifts(tiny_model, x_test) -> None:
    params = {"batch_size": 5, "tta_flip": True, "tta_translate": 1}
    tta = predict_test(tiny_model, x_test, params)["tta"]
    # Written out: x moved one pixel down and right shows row/column 1 (reflection)
    # at the top/left edge, then the image from its first row/column.
    padded = np.pad(x_test, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    down_right = padded[:, :32, :32]
    np.testing.assert_array_equal(down_right[:, 1:, 1:], x_test[:, :-1, :-1])
    np.testing.assert_array_equal(down_right[:, 0, 1:], x_test[:, 1, :-1])
    expected = np.zeros((12, 10))
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if (dy == 0) != (dx == 0):
                continue  # only the centre and the four diagonals
            weight = 1.0 if dy == dx == 0 else 0.5
            view = padded[:, 1 - dy : 33 - dy, 1 - dx : 33 - dx]
            expected += weight * softmax_of(tiny_model, view)
            expected += weight * softmax_of(tiny_model, view[:, :, ::-1])
    np.testing.assert_allclose(tta, expected / 6.0, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "params", [{"batch_size": 4}, {"batch_size": 4, "tta_flip": False}]
)
def test_predict_test_without_tta(tiny_model, x_test, params) -> None:
    probabilities = predict_test(tiny_model, x_test, params)
    assert set(probabilities) == {"plain"}
    np.testing.assert_allclose(
        probabilities["plain"], softmax_of(tiny_model, x_test), rtol=1e-5, atol=1e-7
    )


# ------------------------------------------------------------- evaluate_predictions


def one_hot_like(predicted: list[int], confidence: list[float]) -> np.ndarray:
    """Probabilities with ``confidence`` on the predicted class, the rest spread evenly."""
    n = len(predicted)
    rest = (1 - np.asarray(confidence)) / 9
    probabilities = np.repeat(rest[:, None], 10, axis=1)
    probabilities[np.arange(n), predicted] = confidence
    return probabilities


@pytest.fixture
def hand_made() -> dict[str, object]:
    """20 test images, two per class; 15 predicted right (accuracy 0.75)."""
    y_test = np.repeat(np.arange(10), 2).astype(np.uint8)
    predicted = y_test.astype(int).copy()
    # Five mistakes: both cats called dogs, one dog a cat, one ship a plane, a truck a car.
    predicted[[6, 7, 10, 16, 19]] = [5, 5, 3, 0, 1]
    confidence = np.linspace(0.5, 0.95, 20)
    plain = one_hot_like(predicted.tolist(), confidence.tolist())
    tta = one_hot_like(y_test.astype(int).tolist(), [0.6] * 20)  # all right
    return {
        "y_test": y_test,
        "predicted": predicted,
        "confidence": confidence,
        "probabilities": {"plain": plain, "tta": tta},
    }


def test_evaluate_predictions_metrics(hand_made) -> None:
    y_test, plain = hand_made["y_test"], hand_made["probabilities"]["plain"]
    metrics, report, predictions = evaluate_predictions(
        hand_made["probabilities"], y_test, CLASS_NAMES
    )

    assert metrics["num_test_images"] == 20
    assert metrics["accuracy"] == pytest.approx(0.75)
    expected_loss = -np.mean(np.log(plain[np.arange(20), y_test]))
    assert metrics["loss"] == pytest.approx(expected_loss, rel=1e-6)
    assert metrics["tta"]["accuracy"] == pytest.approx(1.0)
    assert metrics["tta"]["loss"] == pytest.approx(-np.log(0.6), rel=1e-6)

    assert list(metrics["per_class"]) == CLASS_NAMES
    for cls, values in metrics["per_class"].items():
        assert set(values) == {"precision", "recall", "f1-score"}, cls
        assert all(0.0 <= v <= 1.0 for v in values.values()), cls
    # cat: 2 true, 0 found; 1 dog predicted as cat -> precision 0, recall 0.
    assert metrics["per_class"]["cat"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1-score": 0.0,
    }
    # dog: 1 of 2 found; predicted dog 3 times (two cats) -> precision 1/3, recall 1/2.
    assert metrics["per_class"]["dog"]["precision"] == pytest.approx(1 / 3)
    assert metrics["per_class"]["dog"]["recall"] == pytest.approx(0.5)
    assert metrics["per_class"]["dog"]["f1-score"] == pytest.approx(0.4)
    assert metrics["per_class"]["frog"] == {
        "precision": 1.0,
        "recall": 1.0,
        "f1-score": 1.0,
    }
    recalls = [metrics["per_class"][c]["recall"] for c in CLASS_NAMES]
    assert metrics["macro_avg"]["recall"] == pytest.approx(np.mean(recalls))
    assert set(metrics["macro_avg"]) == {"precision", "recall", "f1-score"}
    assert all(0.0 <= v <= 1.0 for v in metrics["macro_avg"].values())
    assert all(0.0 <= metrics[k] for k in ("loss", "accuracy"))

    assert report["class"].tolist()[:10] == CLASS_NAMES
    assert {"macro avg", "weighted avg"} <= set(report["class"])
    assert {"precision", "recall", "f1-score", "support"} <= set(report.columns)
    assert report.set_index("class").loc["cat", "support"] == 2


def test_evaluate_predictions_table(hand_made) -> None:
    y_test = hand_made["y_test"]
    _, _, predictions = evaluate_predictions(
        hand_made["probabilities"], y_test, CLASS_NAMES
    )

    assert isinstance(predictions, pd.DataFrame)
    assert list(predictions.columns[:4]) == [
        "index",
        "true_label",
        "predicted_label",
        "confidence",
    ]
    assert len(predictions) == 20
    assert predictions["index"].tolist() == list(range(20))
    assert predictions["true_label"].tolist() == y_test.tolist()
    assert predictions["predicted_label"].tolist() == hand_made["predicted"].tolist()
    np.testing.assert_allclose(predictions["confidence"], hand_made["confidence"])
    assert predictions.loc[6, "true_class"] == "cat"
    assert predictions.loc[6, "predicted_class"] == "dog"


def test_evaluate_predictions_without_tta(hand_made) -> None:
    plain_only = {"plain": hand_made["probabilities"]["plain"]}
    metrics, _, _ = evaluate_predictions(plain_only, hand_made["y_test"], CLASS_NAMES)
    assert "tta" not in metrics
    assert metrics["accuracy"] == pytest.approx(0.75)


def test_evaluate_predictions_on_real_model(tiny_model, x_test) -> None:
    y_test = np.arange(12) % 10
    probabilities = predict_test(
        tiny_model, x_test, {"batch_size": 12, "tta_flip": True}
    )
    metrics, _, predictions = evaluate_predictions(probabilities, y_test, CLASS_NAMES)
    expected = np.mean(probabilities["plain"].argmax(axis=1) == y_test)
    assert metrics["accuracy"] == pytest.approx(expected)
    assert 0.0 <= metrics["tta"]["accuracy"] <= 1.0
    assert predictions["confidence"].between(0, 1).all()


# -------------------------------------------------------------------------- plots


@pytest.fixture
def history() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "epoch": [1, 2, 3, 4],
            "loss": [2.0, 1.5, 1.2, 1.0],
            "accuracy": [0.3, 0.45, 0.55, 0.6],
            "val_loss": [1.8, 1.4, 1.3, 1.35],
            "val_accuracy": [0.35, 0.5, 0.58, 0.57],
            "learning_rate": [0.1, 0.1, 0.05, 0.01],
            "seconds": [3.0, 2.5, 2.5, 2.4],
        }
    )


def test_plot_training_curves(history) -> None:
    loss_fig, accuracy_fig = plot_training_curves(history)

    for fig, column in ((loss_fig, "loss"), (accuracy_fig, "accuracy")):
        assert isinstance(fig, Figure)
        (ax,) = fig.axes
        assert ax.get_ylabel() == column
        assert ax.get_xlabel() == "epoch"
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert set(lines) == {
            f"train {column}",
            f"validation {column}",
            "best epoch (3, by val_accuracy)",  # highest val_accuracy, both plots
        }
        np.testing.assert_allclose(
            lines[f"train {column}"].get_ydata(), history[column]
        )
        np.testing.assert_allclose(
            lines[f"validation {column}"].get_ydata(), history[f"val_{column}"]
        )
        assert list(lines["best epoch (3, by val_accuracy)"].get_xdata()) == [3, 3]


def test_plot_confusion_matrix(hand_made) -> None:
    _, _, predictions = evaluate_predictions(
        hand_made["probabilities"], hand_made["y_test"], CLASS_NAMES
    )
    fig = plot_confusion_matrix(predictions, CLASS_NAMES)

    assert isinstance(fig, Figure)
    heatmaps = [ax for ax in fig.axes if ax.get_title().startswith("Confusion matrix")]
    assert len(heatmaps) == 2
    counts_ax, normalised_ax = heatmaps
    assert [t.get_text() for t in counts_ax.get_xticklabels()] == CLASS_NAMES
    assert [t.get_text() for t in counts_ax.get_yticklabels()] == CLASS_NAMES
    counts = np.asarray(counts_ax.collections[0].get_array()).reshape(10, 10)
    assert counts.sum() == 20
    assert counts[3, 5] == 2  # both cats predicted as dogs
    assert counts[5, 3] == 1
    assert counts[6, 6] == 2
    normalised = np.asarray(normalised_ax.collections[0].get_array()).reshape(10, 10)
    np.testing.assert_allclose(normalised.sum(axis=1), 1.0)
    assert normalised[5, 5] == pytest.approx(0.5)
    texts = [t.get_text() for t in counts_ax.texts]
    assert len(texts) == 100
    assert texts[3 * 10 + 5] == "2"


def test_plot_confident_mistakes(hand_made) -> None:
    _, _, predictions = evaluate_predictions(
        hand_made["probabilities"], hand_made["y_test"], CLASS_NAMES
    )
    x_test = np.random.default_rng(0).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    fig = plot_confident_mistakes(x_test, predictions, CLASS_NAMES, count=3)

    assert isinstance(fig, Figure)
    assert len(fig.axes) == 5  # one row of five
    shown = [ax for ax in fig.axes if ax.get_images()]
    assert len(shown) == 3
    # Mistakes 19, 16, 10 have the highest confidence, in that order.
    assert [ax.get_title().split("\n")[0] for ax in shown] == [
        "true: truck",
        "true: ship",
        "true: dog",
    ]
    assert shown[0].get_title().split("\n")[1] == "pred: automobile (95%)"
    np.testing.assert_array_equal(shown[0].get_images()[0].get_array(), x_test[19])


def test_plot_confident_mistakes_more_than_a_row(hand_made) -> None:
    _, _, predictions = evaluate_predictions(
        hand_made["probabilities"], hand_made["y_test"], CLASS_NAMES
    )
    x_test = np.zeros((20, 32, 32, 3), dtype=np.uint8)
    fig = plot_confident_mistakes(x_test, predictions, CLASS_NAMES, count=20)
    assert len(fig.axes) == 5  # only 5 mistakes exist
    assert sum(bool(ax.get_images()) for ax in fig.axes) == 5


def test_plot_confident_mistakes_without_mistakes(hand_made) -> None:
    y_test = hand_made["y_test"]
    _, _, predictions = evaluate_predictions(
        {"plain": hand_made["probabilities"]["tta"]}, y_test, CLASS_NAMES
    )
    x_test = np.zeros((20, 32, 32, 3), dtype=np.uint8)
    fig = plot_confident_mistakes(x_test, predictions, CLASS_NAMES, count=10)

    assert isinstance(fig, Figure)
    assert not any(ax.get_images() for ax in fig.axes)
    assert [t.get_text() for t in fig.axes[0].texts] == ["no mistakes"]


def test_best_epoch_follows_the_checkpoint_monitor() -> None:
    history = pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "loss": [2.0, 1.0, 0.5],
            "accuracy": [0.3, 0.5, 0.7],
            "val_loss": [1.5, 0.9, 1.1],
            "val_accuracy": [0.4, 0.5, 0.6],
        }
    )
    by_accuracy, _ = plot_training_curves(history, "val_accuracy")
    by_loss, _ = plot_training_curves(history, "val_loss")
    labels = [
        next(
            t.get_text()
            for t in fig.axes[0].get_legend().get_texts()
            if "best" in t.get_text()
        )
        for fig in (by_accuracy, by_loss)
    ]
    plt.close("all")
    assert labels == ["best epoch (3, by val_accuracy)", "best epoch (2, by val_loss)"]


def test_best_epoch_by_training_accuracy_is_not_the_validation_one() -> None:
    history = pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "loss": [2.0, 1.0, 0.5],
            "accuracy": [0.3, 0.5, 0.7],
            "val_loss": [1.5, 0.9, 1.1],
            "val_accuracy": [0.4, 0.6, 0.5],
        }
    )
    labels = [
        next(
            t.get_text()
            for t in plot_training_curves(history, monitor)[0]
            .axes[0]
            .get_legend()
            .get_texts()
            if "best" in t.get_text()
        )
        for monitor in ("accuracy", "val_accuracy", "loss")
    ]
    plt.close("all")
    assert labels == [
        "best epoch (3, by accuracy)",
        "best epoch (2, by val_accuracy)",
        "best epoch (3, by loss)",
    ]
