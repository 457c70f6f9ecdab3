"""A model file never runs code: KerasModelDataset refuses what needs it, clearly,
before building anything (``check()``, which the preflight hook runs) and on load."""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, DatasetError

from cifar10_kedro import settings
from cifar10_kedro.datasets import KerasModelDataset
from tests.conftest import PROJECT_ROOT

SAFE_MODE = (
    "and models are loaded with safe_mode=True, which never runs code from a model "
    "file. Use a model written by this project's training."
)


@pytest.fixture
def lambda_model_file(tmp_path):
    """A model file whose Lambda layer leaves a mark if its code ever runs."""
    marker = tmp_path / "code-ran"
    # Stands for any code an attacker would put in a model file: it leaves a mark.
    code = (
        f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('!'), x)[1]"
    )
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Lambda(eval(code))]  # noqa: S307
    )
    path = tmp_path / "model.keras"
    model.save(path)
    marker.unlink()  # building the model above ran it once
    return path, marker


@pytest.mark.parametrize("method", ["check", "load"])
def test_lambda_layer_is_refused_and_its_code_never_runs(lambda_model_file, method):
    path, marker = lambda_model_file
    with pytest.raises(DatasetError) as info:
        getattr(KerasModelDataset(filepath=str(path)), method)()

    assert str(info.value) == (
        f"'{path}' is not a loadable .keras model: it needs Python code from outside "
        f"Keras (a Lambda layer's Python function), {SAFE_MODE}"
    )
    assert not marker.exists()


def save_with_custom_layer(path, package: str) -> type:
    """Save a model with a custom layer class registered under ``package``."""

    @keras.saving.register_keras_serializable(package=package)
    class Custom(keras.layers.Layer):
        def call(self, x):
            return x * 2

    keras.Sequential([keras.Input((4,)), Custom()]).save(path)
    return Custom


@pytest.mark.parametrize("method", ["check", "load"])
def test_custom_layer_class_is_refused_and_named(tmp_path, method):
    path = tmp_path / "model.keras"
    save_with_custom_layer(path, "elsewhere")
    del keras.saving.get_custom_objects()["elsewhere>Custom"]  # code we do not have

    with pytest.raises(DatasetError) as info:
        getattr(KerasModelDataset(filepath=str(path)), method)()

    assert str(info.value) == (
        f"'{path}' is not a loadable .keras model: it needs Python code from outside "
        f"Keras (the custom class 'elsewhere>Custom'), {SAFE_MODE}"
    )


def test_a_nested_custom_object_is_found(tmp_path):
    """Not only layers: an initializer the file names by class is code too."""

    @keras.saving.register_keras_serializable(package="elsewhere")
    class Halves(keras.initializers.Initializer):
        def __call__(self, shape, dtype=None):
            return keras.ops.full(shape, 0.5, dtype=dtype)

    path = tmp_path / "model.keras"
    keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(2, kernel_initializer=Halves())]
    ).save(path)
    del keras.saving.get_custom_objects()["elsewhere>Halves"]
    with pytest.raises(DatasetError, match=r"the custom class 'elsewhere>Halves'"):
        KerasModelDataset(filepath=str(path)).check()


def test_a_registered_custom_class_passes(tmp_path):
    """A class that this process registered (as the project's optimizers are) is
    known code, not code from the file: the check passes and the model loads."""
    path = tmp_path / "model.keras"
    custom = save_with_custom_layer(path, "cifar10_kedro_tests")
    try:
        dataset = KerasModelDataset(filepath=str(path))
        config = dataset.check()
        assert config["config"]["layers"][1]["registered_name"] == (
            "cifar10_kedro_tests>Custom"
        )
        model = dataset.load()
        assert isinstance(model.layers[-1], custom)
        np.testing.assert_allclose(model.predict(np.ones((1, 4)), verbose=0), 2.0)
    finally:
        del keras.saving.get_custom_objects()["cifar10_kedro_tests>Custom"]


def test_a_module_that_only_starts_with_keras_is_not_keras(tmp_path):
    plain = tmp_path / "plain.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]).save(plain)
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as target:
        for member in source.infolist():
            data = source.read(member.filename)
            if member.filename == "config.json":
                config = json.loads(data)
                config["config"]["layers"][1]["module"] = "kerasx_evil.layers"
                data = json.dumps(config).encode()
            target.writestr(member, data)
    # load() refuses it (Keras looks for the class in that module)...
    with pytest.raises(DatasetError, match="the custom class 'Dense'"):
        KerasModelDataset(filepath=str(path)).load()
    # ...so check(), which the preflight hook runs, has to refuse it too.
    with pytest.raises(DatasetError, match="needs Python code from outside Keras"):
        KerasModelDataset(filepath=str(path)).check()


def test_safe_mode_is_the_default(tmp_path):
    dataset = KerasModelDataset(filepath=str(tmp_path / "m.keras"))
    assert dataset._describe()["load_args"]["safe_mode"] is True  # noqa: SLF001


@pytest.mark.parametrize("name", ["trained_model", "notebook.trained_model"])
def test_the_catalog_loads_every_trained_model_in_safe_mode(name):
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"), **settings.CONFIG_LOADER_ARGS
    )
    catalog = DataCatalog.from_config(loader["catalog"])
    dataset = catalog.get(name)
    assert isinstance(dataset, KerasModelDataset)
    described = dataset._describe()  # noqa: SLF001
    assert described["load_args"]["safe_mode"] is True
    assert described["version"] is not None  # versioned, as every result
    folder = "06_models/notebook" if name.startswith("notebook.") else "06_models"
    assert str(described["filepath"]).endswith(f"{folder}/model.keras")
