"""A model file never runs code: KerasModelDataset refuses what needs it, clearly."""

from __future__ import annotations

import keras
import pytest
import yaml
from kedro.io import DatasetError

from cifar10_kedro.datasets import KerasModelDataset
from tests.conftest import PROJECT_ROOT


def test_lambda_layer_is_refused_and_its_code_never_runs(tmp_path):
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

    with pytest.raises(DatasetError) as info:
        KerasModelDataset(filepath=str(path)).load()

    assert str(info.value) == (
        f"'{path}' is not a loadable .keras model: it needs Python code from outside "
        "Keras (a Lambda layer's Python function), and models are loaded with "
        "safe_mode=True, which never runs code from a model file. Use a model "
        "written by this project's training."
    )
    assert not marker.exists()


def test_custom_layer_class_is_refused_and_named(tmp_path):
    @keras.saving.register_keras_serializable(package="elsewhere")
    class Custom(keras.layers.Layer):
        def call(self, x):
            return x

    path = tmp_path / "model.keras"
    keras.Sequential([keras.Input((4,)), Custom()]).save(path)
    del keras.saving.get_custom_objects()["elsewhere>Custom"]  # code we do not have

    with pytest.raises(DatasetError) as info:
        KerasModelDataset(filepath=str(path)).load()

    assert str(info.value).startswith(
        f"'{path}' is not a loadable .keras model: it needs Python code from outside "
        "Keras (the custom class 'Custom'), and models are loaded with safe_mode=True"
    )


def test_safe_mode_is_the_default_and_the_catalog_keeps_it(tmp_path):
    dataset = KerasModelDataset(filepath=str(tmp_path / "m.keras"))
    assert dataset._describe()["load_args"]["safe_mode"] is True  # noqa: SLF001
    catalog = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog.yml").read_text())
    entry = catalog["trained_model"]
    assert entry["type"] == "tensorflow.TensorFlowModelDataset"
    assert entry["load_args"]["safe_mode"] is True
    assert entry["versioned"] is True
