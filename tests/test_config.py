"""Configuration environments resolve to what docs/configuration.md promises."""

from __future__ import annotations

import numpy as np
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from cifar10_kedro.pipelines.model_training.nodes import build_model
from cifar10_kedro.pipelines.model_training.params import ModelParams
from tests.pipelines.test_pipelines import make_project_copy


def load_context(tmp_path, env: str | None):
    project = make_project_copy(tmp_path)
    bootstrap_project(project)
    session = KedroSession.create(project_path=project, env=env)
    return project, session.load_context()


def test_notebook_environment_is_the_notebook_configuration(tmp_path):
    """Through a KedroSession: Kedro types the groups the nodes ask for."""
    _, context = load_context(tmp_path, "notebook")
    params = context.params["model_training"]
    model_params = params["model"]
    assert isinstance(model_params, ModelParams)  # validated by Kedro
    assert model_params.architecture == "notebook_cnn"
    assert params["fit"].batch_size == 32
    assert params["compile"].optimizer.name == "adam"
    assert params["compile"].optimizer.learning_rate == 0.005
    assert params["compile"].loss == "sparse_categorical_crossentropy"
    assert params["compile"].label_smoothing == 0.0
    assert model_params.augmentation_layers.model_dump() == {
        "rotation_degrees": 10,
        "width_shift": 0.3,
        "height_shift": 0.3,
        "fill_mode": "nearest",
        "interpolation": "bilinear",
    }
    assert params["fit"].augmentation.flip == "none"
    model = build_model(model_params, 0, np.zeros((64, 32, 32, 3), np.uint8))
    assert model.count_params() == 7_385_110


def test_environments_share_the_arrays_when_they_ingest_alike(tmp_path):
    """--env notebook trains on the default's arrays; smoke, a subset, has its own."""

    def path(env: str | None) -> str:
        # One at a time: OmegaConf's resolvers are global to the process.
        project, context = load_context(tmp_path / str(env), env)
        found = context.catalog.get("x_train")._describe()["filepath"]  # noqa: SLF001
        return str(found.relative_to(project))

    assert path(None) == "data/05_model_input/x_train.pkl"
    assert path("notebook") == "data/05_model_input/x_train.pkl"
    assert path("smoke") == "data/smoke/05_model_input/x_train.pkl"


@pytest.mark.parametrize("env", ["smoke", "notebook", "gpu"])
def test_other_environments_write_under_their_own_root(tmp_path, env):
    project, context = load_context(tmp_path, env)
    model_path = context.catalog.get("trained_model")._describe()["filepath"]  # noqa: SLF001
    assert str(model_path).startswith(str(project / "data" / env))


def test_raw_data_path_comes_from_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("CIFAR10_RAW_PATH", raising=False)
    project, context = load_context(tmp_path / "a", None)
    default = context.catalog.get("cifar10_raw")._describe()["filepath"]  # noqa: SLF001
    assert default == str(project / "data/01_raw/cifar-10-python.tar.gz")

    monkeypatch.setenv("CIFAR10_RAW_PATH", "/somewhere/cifar10-jpeg.tar.gz")
    _, context = load_context(tmp_path / "b", "smoke")
    chosen = context.catalog.get("cifar10_raw")._describe()["filepath"]  # noqa: SLF001
    assert chosen == "/somewhere/cifar10-jpeg.tar.gz"
