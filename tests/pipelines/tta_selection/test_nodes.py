"""select_tta: each candidate test-time augmentation scored on the validation split."""

from __future__ import annotations

import numpy as np
import pytest

from cifar10_kedro.pipelines.reporting.nodes import (
    evaluate_predictions,
    predict_test,
)
from cifar10_kedro.pipelines.reporting.params import TTASelectionParams
from cifar10_kedro.pipelines.tta_selection.nodes import select_tta
from tests.conftest import OFFICIAL_CLASS_NAMES, base_params

FOUR = {
    "none": {"flip": False, "translate": 0, "shifts": 4},
    "flip": {"flip": True, "translate": 0, "shifts": 4},
    "shift 1px": {"flip": False, "translate": 1, "shifts": 4},
    "flip + shift 1px": {"flip": True, "translate": 1, "shifts": 4},
}


def selection(candidates=FOUR) -> TTASelectionParams:
    """The group with these candidates alone (the whole group: it has no other key)."""
    return TTASelectionParams.model_validate({"candidates": candidates})


def reporting(**tta):
    return base_params(
        "reporting",
        {"batch_size": 7, "tta": {"flip": False, "translate": 0, "shifts": 4, **tta}},
    )


class MarkedImagesModel:
    """A stand-in model that reads its prediction off the top-right pixel: channel 0
    is the class + 1 (0: no idea, a uniform guess), channel 1 the confidence in %.

    Each view of an image shows a different pixel there (the image: (0, 31); its
    mirror: (0, 0); its diagonal shifts by one pixel: (1, 30); their mirrors: (1, 1)),
    so that an image can say what each view predicts.
    """

    def predict_on_batch(self, batch):
        batch = np.asarray(batch)
        label = batch[:, 0, -1, 0].astype(int) - 1
        confidence = batch[:, 0, -1, 1] / 100
        probabilities = np.full((len(batch), 10), 0.1)
        for row, (c, p) in enumerate(zip(label, confidence, strict=True)):
            if c >= 0:
                probabilities[row] = (1 - p) / 9
                probabilities[row, c] = p
        return probabilities


def marked_images(labels: np.ndarray, views: dict) -> np.ndarray:
    """Images whose ``views`` ({pixel: (label offset, confidence %)}) predict
    ``(label + offset) % 10`` with that confidence."""
    x = np.zeros((len(labels), 32, 32, 3), dtype=np.uint8)
    for (row, column), (offset, percent) in views.items():
        x[:, row, column, 0] = (labels + offset) % 10 + 1
        x[:, row, column, 1] = percent
    return x


@pytest.fixture
def shifts_only_help() -> tuple[np.ndarray, np.ndarray]:
    """Validation images that only the shifted views get right: the image and its
    mirror are wrong at 0.6, the shifts right at 0.9 and their mirrors wrong at 0.99."""
    y = np.arange(20) % 10
    x = marked_images(
        y, {(0, 31): (1, 60), (0, 0): (1, 60), (1, 30): (0, 90), (1, 1): (2, 99)}
    )
    return x, y


def test_the_marked_views_predict_what_they_say(shifts_only_help) -> None:
    x, y = shifts_only_help
    model = MarkedImagesModel()
    assert (model.predict_on_batch(x).argmax(axis=1) == (y + 1) % 10).all()
    assert (model.predict_on_batch(x[:, :, ::-1]).argmax(axis=1) == (y + 1) % 10).all()
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    shifted = padded[:, 0:32, 2:34]  # moved one pixel down and left
    assert (model.predict_on_batch(shifted).argmax(axis=1) == y).all()
    assert (
        model.predict_on_batch(shifted[:, :, ::-1]).argmax(axis=1) == (y + 2) % 10
    ).all()


def test_every_candidate_is_scored_and_the_best_chosen(shifts_only_help) -> None:
    x_val, y_val = shifts_only_help
    chosen = select_tta(
        MarkedImagesModel(),
        x_val,
        y_val,
        selection(),
        reporting(flip=True, translate=1),
    )
    assert chosen["num_validation_images"] == 20
    options = chosen["candidates"]
    assert list(options) == list(FOUR)
    assert {name: o["accuracy"] for name, o in options.items()} == {
        "none": 0.0,
        "flip": 0.0,
        "shift 1px": 1.0,
        "flip + shift 1px": 0.0,  # the mirrored shifts outweigh the shifts
    }
    assert [o["views"] for o in options.values()] == [1, 2, 5, 10]
    assert options["shift 1px"]["flip"] is False
    assert options["shift 1px"]["translate"] == 1
    assert chosen["best"] == "shift 1px"
    assert chosen["configured"] == "flip + shift 1px"
    assert chosen["configured_is_best"] is False
    # Wrong at 0.6 everywhere: the log loss of the 0.044 left on the right class.
    assert options["none"]["log_loss"] == pytest.approx(-np.log(0.4 / 9))
    assert options["none"]["expected_calibration_error"] == pytest.approx(0.6)


def test_of_equally_accurate_candidates_the_fewest_views_win() -> None:
    # The image right at 0.6, its mirror wrong at 0.9; the shifts tell nothing.
    y = np.arange(10)
    x = marked_images(y, {(0, 31): (0, 60), (0, 0): (3, 90)})
    chosen = select_tta(MarkedImagesModel(), x, y, selection(), reporting())
    accuracies = {n: o["accuracy"] for n, o in chosen["candidates"].items()}
    assert accuracies == {
        "none": 1.0,
        "flip": 0.0,
        "shift 1px": 1.0,
        "flip + shift 1px": 0.0,
    }
    assert chosen["best"] == "none"
    assert chosen["configured"] == "none"
    assert chosen["configured_is_best"] is True


def test_a_configured_augmentation_that_is_no_candidate_is_said(shifts_only_help):
    x_val, y_val = shifts_only_help
    chosen = select_tta(
        MarkedImagesModel(), x_val, y_val, selection(), reporting(translate=3)
    )
    assert chosen["configured"] is None
    assert chosen["configured_is_best"] is False


def test_the_scores_are_those_of_the_test_evaluation() -> None:
    """A candidate's validation scores are what reporting computes for that
    augmentation on the same images."""
    import keras  # noqa: PLC0415

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3), dtype="uint8"),
            keras.layers.Rescaling(1 / 255.0, dtype="float32"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    x = np.random.default_rng(3).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    y = np.arange(16) % 10
    shift = {"flip": False, "translate": 2, "shifts": 2}
    chosen = select_tta(model, x, y, selection({"shift 2px": shift}), reporting())
    expected, _, _ = evaluate_predictions(
        predict_test(model, x, reporting(**shift)),
        y,
        OFFICIAL_CLASS_NAMES,
        {"temperature": 1.0},
        reporting(**shift),
    )
    for key in ("accuracy", "log_loss", "expected_calibration_error"):
        got = chosen["candidates"]["shift 2px"][key]
        assert got == pytest.approx(expected["tta"][key], rel=1e-5), key


def test_no_candidates_is_an_error() -> None:
    with pytest.raises(ValueError, match="candidates"):
        selection({})


def test_conf_base_scores_the_configured_augmentation() -> None:
    """The reports' augmentation is one of the candidates the pipeline compares."""
    candidates = base_params("tta_selection").candidates
    assert base_params("reporting").tta in candidates.values()
