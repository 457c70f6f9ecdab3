"""KerasModelDataset: .keras files through Keras alone, versioned, in safe mode."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from kedro.io import DatasetError
from kedro.io.core import Version

from cifar10_kedro.datasets import KerasModelDataset


def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="softmax")]
    )


def test_round_trip_keeps_weights_and_predictions(tmp_path):
    model = tiny_model()
    dataset = KerasModelDataset(filepath=str(tmp_path / "models" / "model.keras"))
    assert not dataset.exists()
    dataset.save(model)
    assert dataset.exists()
    loaded = dataset.load()
    x = np.linspace(0, 1, 8, dtype="float32").reshape(2, 4)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6
    )


def test_versions_are_kept_side_by_side(tmp_path):
    path = str(tmp_path / "model.keras")
    first, second = tiny_model(), tiny_model()
    second.layers[-1].kernel.assign(np.zeros((4, 3), dtype="float32"))
    KerasModelDataset(
        filepath=path, version=Version(None, "2026-01-01T00.00.00.000Z")
    ).save(first)
    KerasModelDataset(
        filepath=path, version=Version(None, "2026-01-02T00.00.00.000Z")
    ).save(second)
    latest = KerasModelDataset(filepath=path, version=Version(None, None)).load()
    earlier = KerasModelDataset(
        filepath=path, version=Version("2026-01-01T00.00.00.000Z", None)
    ).load()
    assert not np.any(latest.layers[-1].kernel.numpy())
    assert np.any(earlier.layers[-1].kernel.numpy())


def test_a_model_with_python_code_is_refused_in_safe_mode(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2)])
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(DatasetError, match=r"lambda\.keras.*safe_mode"):
        KerasModelDataset(filepath=str(path)).load()


def test_a_file_that_is_not_a_keras_model_names_the_file(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("not a zip archive")
    with pytest.raises(
        DatasetError, match=r"model\.keras' is not a loadable \.keras model"
    ):
        KerasModelDataset(filepath=str(path)).load()
