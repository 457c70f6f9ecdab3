"""The inference nodes on real image files and a small real Keras model."""

from __future__ import annotations

import logging

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from cifar10_kedro.pipelines.inference.nodes import (
    ImageReadError,
    PreparedBatch,
    classify_images,
    plot_contact_sheet,
    prepare_images,
    summarize_inference,
)
from cifar10_kedro.pipelines.inference.params import InferenceParams
from cifar10_kedro.preprocessing import prepare_image
from cifar10_kedro.variants import merged
from tests.conftest import OFFICIAL_CLASS_NAMES, base_params
from tests.image_files import BROKEN, every_format

# conf/base's inference parameters, for a few small images.
SMALL = {
    "input_path": "/data/photos",
    "batch_size": 4,
    "workers": 2,
    "contact_sheet": {"max_images": 6, "columns": 3},
}


def params(**changes) -> InferenceParams:
    return base_params("inference", merged(SMALL, changes))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((32, 32, 3), dtype="uint8", name="image"),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


@pytest.fixture
def loaders() -> dict:
    return {name: (lambda d=data: d) for name, data in sorted(every_format().items())}


def test_prepare_images_keeps_every_file_and_the_reason_of_each_failure(
    loaders, caplog
):
    with caplog.at_level(logging.WARNING):
        batch = prepare_images(loaders, params())
    table = batch.table
    assert list(table["file"]) == list(loaders)
    assert list(table.columns) == ["file", "width", "height", "format", "error"]
    failed = table[table["error"] != ""]
    assert set(failed["file"]) == BROKEN
    assert (
        "corrupt or truncated PNG"
        in failed.set_index("file").loc["truncated.png", "error"]
    )
    assert batch.pixels.shape == (len(loaders) - len(BROKEN), 32, 32, 3)
    assert batch.pixels.dtype == np.uint8
    # A warning names each unreadable file.
    for name in BROKEN:
        assert f"Cannot read '{name}'" in caplog.text
    # What the model sees is prepare_image's output, in file order.
    readable = [n for n in loaders if n not in BROKEN]
    first = prepare_image(loaders[readable[0]](), resize="crop", max_pixels=50_000_000)
    np.testing.assert_array_equal(batch.pixels[0], first.pixels)


def test_on_error_fail_stops_at_the_first_unreadable_file(loaders):
    with pytest.raises(ImageReadError) as raised:
        prepare_images(loaders, params(on_error="fail"))
    message = str(raised.value)
    # Files are in name order: not_an_image.jpg comes before truncated.png.
    assert message.startswith("'not_an_image.jpg' under '/data/photos' cannot be read")
    assert "inference.on_error is 'fail'" in message


def test_an_unreadable_file_is_reported_like_a_corrupt_one(loaders):
    def denied() -> bytes:
        raise PermissionError(13, "Permission denied", "/data/photos/locked.png")

    batch = prepare_images({"locked.png": denied, **loaders}, params())
    error = batch.table.set_index("file").loc["locked.png", "error"]
    assert "Permission denied" in error


def test_classify_images_gives_one_row_per_file(model, loaders):
    batch = prepare_images(loaders, params())
    predictions = classify_images(model, batch, OFFICIAL_CLASS_NAMES, "V1", params())
    assert list(predictions.columns) == [
        "file",
        "predicted_class",
        "confidence",
        "top_1_class",
        "top_1_probability",
        "top_2_class",
        "top_2_probability",
        "top_3_class",
        "top_3_probability",
        "width",
        "height",
        "error",
        "model_version",
    ]
    assert list(predictions["file"]) == list(loaders)
    assert (predictions["model_version"] == "V1").all()
    ok = predictions[predictions["error"] == ""]
    probabilities = np.asarray(model.predict(batch.pixels, verbose=0))
    np.testing.assert_allclose(ok["confidence"], probabilities.max(axis=1), rtol=1e-6)
    assert list(ok["predicted_class"]) == [
        OFFICIAL_CLASS_NAMES[i] for i in probabilities.argmax(axis=1)
    ]
    assert (ok["predicted_class"] == ok["top_1_class"]).all()
    assert (ok["top_1_probability"] >= ok["top_2_probability"]).all()
    assert (ok["top_2_probability"] >= ok["top_3_probability"]).all()
    failed = predictions[predictions["error"] != ""]
    assert failed["confidence"].isna().all() and (failed["predicted_class"] == "").all()
    sizes = predictions.set_index("file")
    assert (sizes.loc["grey.jpg", "width"], sizes.loc["grey.jpg", "height"]) == (64, 48)
    assert (sizes.loc["rotated.jpg", "width"], sizes.loc["rotated.jpg", "height"]) == (
        32,
        48,
    )


def test_classify_images_refuses_a_model_of_another_shape(loaders):
    other = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    batch = prepare_images(loaders, params())
    with pytest.raises(ValueError, match=r"takes images of shape \(28, 28, 1\)"):
        classify_images(other, batch, OFFICIAL_CLASS_NAMES, "V1", params())


def test_contact_sheet_and_summary(model, loaders, caplog):
    batch = prepare_images(loaders, params())
    predictions = classify_images(model, batch, OFFICIAL_CLASS_NAMES, "V1", params())
    # As read back from the CSV file: empty errors are NaN.
    predictions = predictions.replace({"error": {"": np.nan}})
    figure = plot_contact_sheet(batch, predictions, params())
    assert isinstance(figure, Figure)
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert len(texts) == 2 * 6  # caption and name of the first 6 files only
    assert "unreadable" in texts  # not_an_image.jpg is among the first six
    # The untrained model is unsure of everything: every readable tile is marked.
    assert sum(t.startswith("? ") for t in texts) == 5
    assert len(figure.axes[0].patches) == 5

    with caplog.at_level(logging.INFO):
        summary = summarize_inference(predictions, params())
    assert summary["files"] == len(loaders)
    assert summary["unreadable"] == len(BROKEN)
    assert summary["classified"] == len(loaders) - len(BROKEN)
    assert sum(summary["per_class"].values()) == summary["classified"]
    assert summary["model_version"] == "V1"
    assert (
        f"{len(loaders)} file(s), {len(loaders) - len(BROKEN)} classified, 2 unreadable"
        in caplog.text
    )


def test_an_empty_batch_after_all_failures_still_gives_rows(model):
    batch = prepare_images({"a.png": lambda: b"x", "b.png": lambda: b""}, params())
    assert batch.pixels.shape == (0, 32, 32, 3)
    predictions = classify_images(model, batch, OFFICIAL_CLASS_NAMES, "V1", params())
    assert len(predictions) == 2 and (predictions["error"] != "").all()
    assert isinstance(plot_contact_sheet(batch, predictions, params()), Figure)
    assert summarize_inference(predictions, params())["classified"] == 0


def test_parameters_are_checked():
    with pytest.raises(ValueError, match=r"resize"):
        params(resize="zoom")
    with pytest.raises(ValueError, match=r"resise: unknown parameter \(a typo\?\)"):
        params(resise="crop")
    assert params(input_path=2024).input_path == "2024"


def test_prepared_batch_readable_mask():
    table = pd.DataFrame({"file": ["a", "b"], "error": ["", "bad"]})
    batch = PreparedBatch(table=table, pixels=np.zeros((1, 32, 32, 3), np.uint8))
    assert batch.readable.tolist() == [True, False]
