"""Tests for the reporting nodes: test-set predictions, metrics and plots."""

from __future__ import annotations

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from cifar10_kedro.pipelines.reporting.nodes import (
    calibration,
    evaluate_predictions,
    evaluate_validation,
    fit_temperature,
    plot_confident_mistakes,
    plot_confusion_matrix,
    plot_reliability_diagram,
    plot_training_curves,
    predict_test,
    predict_validation,
    scale_temperature,
    tta_views,
)
from cifar10_kedro.pipelines.reporting.params import ReportingParams, TTAParams
from cifar10_kedro.variants import merged
from tests.conftest import OFFICIAL_CLASS_NAMES, base_params

CLASS_NAMES = OFFICIAL_CLASS_NAMES
NO_TTA = {"flip": False, "translate": 0, "shifts": 4}
# What fit_temperature returns when the probabilities need no scaling.
UNSCALED = {"temperature": 1.0}


def params(**values) -> ReportingParams:
    """conf/base's reporting parameters with ``values``; test-time augmentation is off
    unless ``values`` turn it on."""
    return base_params("reporting", merged({"tta": NO_TTA}, values))


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


# ------------------------------------------------------------------- tta views


def test_tta_views_flip_and_diagonal_shifts() -> None:
    views = tta_views(TTAParams(flip=True, translate=2, shifts=4))
    assert len(views) == 10
    assert views[(0, 0, False)] == views[(0, 0, True)] == 1.0
    shifted = {(dy, dx) for (dy, dx, _), w in views.items() if w == 0.5}  # noqa: PLR2004
    assert shifted == {(-2, -2), (-2, 2), (2, -2), (2, 2)}
    assert {m for (dy, dx, m) in views if (dy, dx) == (2, -2)} == {False, True}
    assert tta_views(TTAParams(translate=1, flip=False, shifts=4)) == {
        (0, 0, False): 1.0,
        (-1, -1, False): 0.5,
        (-1, 1, False): 0.5,
        (1, -1, False): 0.5,
        (1, 1, False): 0.5,
    }
    assert tta_views(TTAParams(flip=True, translate=0, shifts=4)) == {
        (0, 0, False): 1.0,
        (0, 0, True): 1.0,
    }
    assert tta_views(TTAParams(**NO_TTA)) == {(0, 0, False): 1.0}


def test_two_shifts_are_one_diagonal_as_airbench() -> None:
    views = tta_views(TTAParams(flip=True, translate=1, shifts=2))
    assert views == {
        (0, 0, False): 1.0,
        (0, 0, True): 1.0,
        (-1, -1, False): 0.5,
        (-1, -1, True): 0.5,
        (1, 1, False): 0.5,
        (1, 1, True): 0.5,
    }
    # Normalised: the image and its mirror 1/4 each, each shifted view 1/8.
    assert views[(1, 1, True)] / sum(views.values()) == 1 / 8
    with pytest.raises(ValueError, match="shifts"):
        TTAParams(flip=True, translate=1, shifts=3)


# --------------------------------------------------------------------- predict_test


def test_predict_test_plain_and_tta(tiny_model, x_test) -> None:
    probabilities = predict_test(
        tiny_model, x_test, params(batch_size=5, tta={"flip": True})
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
        tiny_model, symmetric, params(batch_size=8, tta={"flip": True})
    )
    np.testing.assert_allclose(probabilities["tta"], probabilities["plain"], rtol=1e-5)


def test_predict_test_tta_with_shifts(tiny_model, x_test) -> None:
    tta = predict_test(
        tiny_model, x_test, params(batch_size=5, tta={"flip": True, "translate": 1})
    )["tta"]
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
    "values", [{"batch_size": 4}, {"batch_size": 4, "tta": {"flip": False}}]
)
def test_predict_test_without_tta(tiny_model, x_test, values) -> None:
    probabilities = predict_test(tiny_model, x_test, params(**values))
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


BINS = params().calibration_bins


def test_evaluate_predictions_metrics(hand_made) -> None:
    y_test, plain = hand_made["y_test"], hand_made["probabilities"]["plain"]
    metrics, report, predictions = evaluate_predictions(
        hand_made["probabilities"],
        y_test,
        CLASS_NAMES,
        UNSCALED,
        params(tta={"flip": True}),
    )

    assert metrics["num_test_images"] == 20
    assert metrics["accuracy"] == pytest.approx(0.75)
    expected_loss = -np.mean(np.log(plain[np.arange(20), y_test]))
    # The plain cross-entropy, named so as not to be taken for training's loss.
    assert "loss" not in metrics
    assert metrics["log_loss"] == pytest.approx(expected_loss, rel=1e-6)
    assert metrics["expected_calibration_error"] == pytest.approx(
        calibration(plain, y_test, BINS)["expected_calibration_error"]
    )
    assert metrics["tta"]["accuracy"] == pytest.approx(1.0)
    assert metrics["tta"]["log_loss"] == pytest.approx(-np.log(0.6), rel=1e-6)
    # Every TTA prediction is right with confidence 0.6: a gap of 0.4 everywhere.
    assert metrics["tta"]["expected_calibration_error"] == pytest.approx(0.4)
    assert metrics["tta"]["views"] == 2  # the image and its mirror

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
    assert all(0.0 <= metrics[k] for k in ("log_loss", "accuracy"))

    assert report["class"].tolist()[:10] == CLASS_NAMES
    assert {"macro avg", "weighted avg"} <= set(report["class"])
    assert {"precision", "recall", "f1-score", "support"} <= set(report.columns)
    assert report.set_index("class").loc["cat", "support"] == 2


def test_evaluate_predictions_counts_the_configured_views(hand_made) -> None:
    metrics, _, _ = evaluate_predictions(
        hand_made["probabilities"],
        hand_made["y_test"],
        CLASS_NAMES,
        UNSCALED,
        params(tta={"flip": True, "translate": 2}),
    )
    assert metrics["tta"]["views"] == 10


def test_evaluate_predictions_table(hand_made) -> None:
    y_test = hand_made["y_test"]
    _, _, predictions = evaluate_predictions(
        hand_made["probabilities"], y_test, CLASS_NAMES, UNSCALED, params()
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
    metrics, _, _ = evaluate_predictions(
        plain_only, hand_made["y_test"], CLASS_NAMES, UNSCALED, params()
    )
    assert "tta" not in metrics
    assert metrics["accuracy"] == pytest.approx(0.75)


def test_evaluate_predictions_on_real_model(tiny_model, x_test) -> None:
    y_test = np.arange(12) % 10
    chosen = params(batch_size=12, tta={"flip": True})
    probabilities = predict_test(tiny_model, x_test, chosen)
    metrics, _, predictions = evaluate_predictions(
        probabilities, y_test, CLASS_NAMES, UNSCALED, chosen
    )
    expected = np.mean(probabilities["plain"].argmax(axis=1) == y_test)
    assert metrics["accuracy"] == pytest.approx(expected)
    assert 0.0 <= metrics["tta"]["accuracy"] <= 1.0
    assert predictions["confidence"].between(0, 1).all()


# -------------------------------------------------------------------- calibration


def test_calibration_of_hand_made_probabilities() -> None:
    # Two predictions at confidence 0.9, one right; two at 0.5, both right.
    y = np.array([1, 2, 3, 4])
    probabilities = one_hot_like([1, 7, 3, 4], [0.9, 0.9, 0.5, 0.5])
    result = calibration(probabilities, y, bins=5)

    # ECE = (2 * |0.5 - 0.9| + 2 * |1.0 - 0.5|) / 4
    assert result["expected_calibration_error"] == pytest.approx(0.45)
    table = result["bins"]
    np.testing.assert_allclose(
        [(b["low"], b["high"]) for b in table],
        [(0.0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0)],
    )
    assert [b["count"] for b in table] == [0, 0, 2, 0, 2]
    assert table[2]["accuracy"] == 1.0
    assert table[2]["confidence"] == pytest.approx(0.5)
    assert table[4]["accuracy"] == 0.5
    assert table[4]["confidence"] == pytest.approx(0.9)
    assert np.isnan(table[0]["accuracy"]) and np.isnan(table[0]["confidence"])


def test_calibration_is_zero_when_confidence_matches_accuracy() -> None:
    # Certain and right; and 0.5 confident and right half the time.
    y = np.array([0, 1, 2, 3, 4, 5])
    probabilities = one_hot_like([0, 1, 2, 3, 9, 9], [1.0, 1.0, 0.5, 0.5, 0.5, 0.5])
    result = calibration(probabilities, y, bins=10)
    assert result["expected_calibration_error"] == pytest.approx(0.0)
    # A confidence of exactly 1 falls in the last bin.
    assert result["bins"][-1]["count"] == 2
    assert sum(b["count"] for b in result["bins"]) == 6


def test_one_bin_is_the_gap_between_mean_confidence_and_accuracy() -> None:
    y = np.array([0, 1, 2, 3])
    probabilities = one_hot_like([0, 1, 2, 9], [0.3, 0.6, 0.8, 0.9])
    result = calibration(probabilities, y, bins=1)
    assert result["expected_calibration_error"] == pytest.approx(abs(0.75 - 0.65))


# ----------------------------------------------- validation and temperature scaling


def test_evaluate_validation_gives_the_plain_scores_of_the_test_evaluation(
    tiny_model,
) -> None:
    x_val = np.random.default_rng(3).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    y_val = np.arange(16) % 10
    chosen = params(batch_size=8, tta={"flip": False, "translate": 2})
    probabilities = predict_validation(tiny_model, x_val, chosen)
    np.testing.assert_allclose(
        probabilities, softmax_of(tiny_model, x_val), rtol=1e-5, atol=1e-7
    )
    metrics = evaluate_validation(probabilities, y_val, chosen)
    expected, _, _ = evaluate_predictions(
        predict_test(tiny_model, x_val, chosen), y_val, CLASS_NAMES, UNSCALED, chosen
    )
    assert metrics["num_validation_images"] == 16
    for key in ("accuracy", "log_loss", "expected_calibration_error"):
        assert metrics[key] == pytest.approx(expected[key], rel=1e-5), key
    assert "tta" not in metrics  # chosen once, by the tta_selection pipeline


def miscalibrated(temperature: float, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(logits), and the probabilities of the logits scaled
    by ``temperature``: what a model over- (above 1) or under-confident (below 1)
    by that factor predicts."""
    rng = np.random.default_rng(7)
    logits = rng.normal(0, 2, (n, 10))
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(10, p=p) for p in truth])
    scaled = np.exp(logits * temperature)
    return scaled / scaled.sum(axis=1, keepdims=True), labels


@pytest.mark.parametrize("factor", [3.0, 0.4])
def test_fit_temperature_undoes_a_known_miscalibration(factor) -> None:
    probabilities, labels = miscalibrated(factor)
    fitted = fit_temperature(probabilities, labels, params())
    assert fitted["temperature"] == pytest.approx(factor, rel=0.1)
    assert fitted["fitted_on"] == "validation"
    assert fitted["num_images"] == labels.size
    before, after = fitted["before"], fitted["after"]
    assert after["accuracy"] == before["accuracy"]  # the order of the logits stays
    assert after["log_loss"] < before["log_loss"]
    assert (
        after["expected_calibration_error"]
        < 0.03
        < before["expected_calibration_error"]
    )


def test_fit_temperature_stays_in_its_range() -> None:
    probabilities, labels = miscalibrated(3.0)
    narrow = params(temperature={"min": 0.5, "max": 2.0})
    assert fit_temperature(probabilities, labels, narrow)["temperature"] == (
        pytest.approx(2.0, rel=1e-3)
    )


def test_a_temperature_range_must_be_a_range() -> None:
    with pytest.raises(ValueError, match="expected min below max"):
        params(temperature={"min": 2.0, "max": 2.0})


def test_scale_temperature_keeps_the_order_and_sums_to_one() -> None:
    probabilities, _ = miscalibrated(2.0, n=50)
    np.testing.assert_allclose(scale_temperature(probabilities, 1.0), probabilities)
    scaled = scale_temperature(probabilities, 2.0)
    np.testing.assert_allclose(scaled.sum(axis=1), 1.0)
    assert (scaled.argmax(axis=1) == probabilities.argmax(axis=1)).all()
    assert (scaled.max(axis=1) < probabilities.max(axis=1)).all()  # less confident
    # Exact zeros (a saturated softmax) stay finite.
    assert np.isfinite(scale_temperature(np.eye(10)[:3], 0.5)).all()


def test_the_test_metrics_apply_the_validation_temperature(hand_made) -> None:
    plain = hand_made["probabilities"]["plain"]
    metrics, _, _ = evaluate_predictions(
        hand_made["probabilities"],
        hand_made["y_test"],
        CLASS_NAMES,
        {"temperature": 2.0},
        params(),
    )
    scaled = metrics["temperature_scaled"]
    assert scaled["temperature"] == 2.0
    assert scaled["accuracy"] == metrics["accuracy"]
    expected = calibration(scale_temperature(plain, 2.0), hand_made["y_test"], BINS)
    assert scaled["expected_calibration_error"] == pytest.approx(
        expected["expected_calibration_error"]
    )


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
            "best": [False, False, True, False],
        }
    )


def returned_model_line(fig: Figure):
    (ax,) = fig.axes
    (line,) = [
        line for line in ax.get_lines() if line.get_label().startswith("returned")
    ]
    return line


def test_plot_training_curves(history) -> None:
    loss_fig, accuracy_fig = plot_training_curves(history)

    for fig, column, label in (
        (loss_fig, "loss", "loss (training objective)"),
        (accuracy_fig, "accuracy", "accuracy"),
    ):
        assert isinstance(fig, Figure)
        (ax,) = fig.axes
        assert ax.get_ylabel() == label
        assert ax.get_xlabel() == "epoch"
        assert ax.get_yscale() == "linear"
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert set(lines) == {
            f"train {label}",
            f"validation {label}",
            "returned model (epoch 3)",  # the history's best row, both plots
        }
        np.testing.assert_allclose(lines[f"train {label}"].get_ydata(), history[column])
        np.testing.assert_allclose(
            lines[f"validation {label}"].get_ydata(), history[f"val_{column}"]
        )
        assert list(lines["returned model (epoch 3)"].get_xdata()) == [3, 3]
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "returned model (epoch 3)" in legend


@pytest.mark.parametrize("best", [1, 2, 4])
def test_plot_training_curves_marks_the_best_row_not_an_extreme(history, best):
    """The returned model's epoch is the history's ``best`` row, whatever monitor
    chose it (here none of the plotted extremes, for epochs 1 and 2)."""
    history["best"] = history["epoch"] == best
    for fig in plot_training_curves(history):
        line = returned_model_line(fig)
        assert line.get_label() == f"returned model (epoch {best})"
        assert list(line.get_xdata()) == [best, best]


def test_plot_training_curves_reads_best_as_saved_in_csv(history, tmp_path) -> None:
    # training_history is a CSV: the column comes back as booleans, or as text.
    path = tmp_path / "history.csv"
    history.to_csv(path, index=False)
    loss_fig, _ = plot_training_curves(pd.read_csv(path))
    assert returned_model_line(loss_fig).get_label() == "returned model (epoch 3)"


def test_plot_training_curves_without_a_best_row_marks_the_last(history) -> None:
    history["best"] = False
    loss_fig, _ = plot_training_curves(history)
    assert returned_model_line(loss_fig).get_label() == "returned model (epoch 4)"


def test_a_diverging_loss_is_drawn_on_a_log_scale(history) -> None:
    history["val_loss"] = [5000.0, 1.4, 1.3, 1.35]
    loss_fig, accuracy_fig = plot_training_curves(history)
    assert loss_fig.axes[0].get_yscale() == "log"
    assert loss_fig.axes[0].get_title().endswith("(log scale)")
    assert accuracy_fig.axes[0].get_yscale() == "linear"


def test_plot_reliability_diagram(hand_made) -> None:
    y_test = hand_made["y_test"]
    probabilities = hand_made["probabilities"]
    fig = plot_reliability_diagram(
        probabilities, y_test, {"temperature": 2.0}, params(calibration_bins=5)
    )

    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    plain_ece = calibration(probabilities["plain"], y_test, 5)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    scaled = calibration(scale_temperature(probabilities["plain"], 2.0), y_test, 5)
    assert legend == [
        "perfect calibration",
        f"plain (ECE {plain_ece['expected_calibration_error']:.3f})",
        "tta (ECE 0.400)",
        f"plain, temperature 2.00 (ECE {scaled['expected_calibration_error']:.3f})",
    ]
    lines = {line.get_label(): line for line in ax.get_lines()}
    # One point per non-empty bin, at its mean confidence and accuracy.
    tta = lines["tta (ECE 0.400)"]
    np.testing.assert_allclose(tta.get_xdata(), [0.6])
    np.testing.assert_allclose(tta.get_ydata(), [1.0])
    filled = [b for b in plain_ece["bins"] if b["count"]]
    plain = lines[legend[1]]
    np.testing.assert_allclose(plain.get_xdata(), [b["confidence"] for b in filled])
    np.testing.assert_allclose(plain.get_ydata(), [b["accuracy"] for b in filled])
    assert "5 bins" in ax.get_title()


def test_plot_reliability_diagram_without_tta(hand_made) -> None:
    plain = {"plain": hand_made["probabilities"]["plain"]}
    fig = plot_reliability_diagram(plain, hand_made["y_test"], UNSCALED, params())
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(legend) == 3
    assert legend[1].startswith("plain (ECE ")
    assert legend[2].startswith("plain, temperature 1.00 (ECE ")
    assert f"{BINS} bins" in fig.axes[0].get_title()


def test_plot_confusion_matrix(hand_made) -> None:
    _, _, predictions = evaluate_predictions(
        hand_made["probabilities"], hand_made["y_test"], CLASS_NAMES, UNSCALED, params()
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
        hand_made["probabilities"], hand_made["y_test"], CLASS_NAMES, UNSCALED, params()
    )
    x_test = np.random.default_rng(0).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    fig = plot_confident_mistakes(
        x_test, predictions, CLASS_NAMES, params(mistakes_to_show=3)
    )

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
        hand_made["probabilities"], hand_made["y_test"], CLASS_NAMES, UNSCALED, params()
    )
    x_test = np.zeros((20, 32, 32, 3), dtype=np.uint8)
    fig = plot_confident_mistakes(
        x_test, predictions, CLASS_NAMES, params(mistakes_to_show=20)
    )
    assert len(fig.axes) == 5  # only 5 mistakes exist
    assert sum(bool(ax.get_images()) for ax in fig.axes) == 5


def test_plot_confident_mistakes_without_mistakes(hand_made) -> None:
    y_test = hand_made["y_test"]
    _, _, predictions = evaluate_predictions(
        {"plain": hand_made["probabilities"]["tta"]},
        y_test,
        CLASS_NAMES,
        UNSCALED,
        params(),
    )
    x_test = np.zeros((20, 32, 32, 3), dtype=np.uint8)
    fig = plot_confident_mistakes(
        x_test, predictions, CLASS_NAMES, params(mistakes_to_show=10)
    )

    assert isinstance(fig, Figure)
    assert not any(ax.get_images() for ax in fig.axes)
    assert [t.get_text() for t in fig.axes[0].texts] == ["no mistakes"]


def test_plot_training_curves_of_a_run_validated_at_its_end(history) -> None:
    """With model_training.fit.validate_last_epochs the first epochs have no
    validation figures: the validation curve has only the validated points."""
    history.loc[:1, ["val_loss", "val_accuracy"]] = np.nan
    for fig, column in zip(plot_training_curves(history), ("loss", "accuracy")):
        (ax,) = fig.axes
        lines = {line.get_label(): line for line in ax.get_lines()}
        (validation,) = [v for k, v in lines.items() if k.startswith("validation")]
        drawn = np.asarray(validation.get_ydata(), float)
        np.testing.assert_allclose(drawn[2:], history[f"val_{column}"][2:])
        assert np.isnan(drawn[:2]).all()
        assert ax.get_yscale() == "linear"
