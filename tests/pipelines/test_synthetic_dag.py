"""The real default DAG on a few synthetic images, without the shared data.

A ``DataCatalog`` of in-memory datasets and Kedro's ``SequentialRunner``, as the
starters test their pipelines: a contributor without CIFAR-10 runs this in seconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from kedro.framework.hooks import _create_hook_manager, hook_impl
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro.validation import ParameterValidator
from kedro.validation.utils import get_typed_fields
from matplotlib.figure import Figure

from cifar10_kedro.pipelines import data_ingestion, model_training, reporting
from tests.conftest import OFFICIAL_CLASS_NAMES, project_parameters
from tests.pipelines.model_training.helpers import merged


def synthetic_cifar10(train_per_class: int, test_per_class: int) -> dict[str, Any]:
    """What ``CIFAR10Dataset`` loads, with class-coloured noise for images."""
    rng = np.random.default_rng(0)
    palette = rng.integers(40, 216, (10, 3))

    def split(per_class: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.repeat(np.arange(10), per_class)
        noise = rng.integers(-40, 41, (y.size, 32, 32, 3))
        x = np.clip(palette[y][:, None, None, :] + noise, 0, 255).astype(np.uint8)
        return x, y

    x_train, y_train = split(train_per_class)
    x_test, y_test = split(test_per_class)
    return {
        "x_train": x_train,
        "y_train": y_train,
        "x_test": x_test,
        "y_test": y_test,
        "class_names": list(OFFICIAL_CLASS_NAMES),
    }


def typed_parameters(pipeline: Any, raw: dict[str, Any]) -> dict[str, Any]:
    """Every ``params:`` input of ``pipeline``, validated and typed as Kedro does."""
    validated = ParameterValidator({"p": pipeline}).validate_raw_params(raw)
    entries = {}
    for name in pipeline.inputs():
        if not name.startswith("params:"):
            continue
        value: Any = validated
        for key in name.removeprefix("params:").split("."):
            value = (
                value[key] if isinstance(value, dict) else get_typed_fields(value)[key]
            )
        entries[name] = value
    return entries


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, Any]:
    pipeline = (
        data_ingestion.create_pipeline()
        + model_training.create_pipeline()
        + reporting.create_pipeline()
    )
    raw = merged(
        project_parameters("smoke"),
        {
            "data_ingestion": {"train_per_class": None, "test_per_class": None},
            "model_training": {
                "model": {"fast_cnn": {"widths": [8, 16], "whitening_images": 100}},
                "fit": {
                    "batch_size": 50,
                    "epochs": 2,
                    "verbose": 0,
                    "checkpoint": {
                        "state_dir": str(tmp_path_factory.mktemp("checkpoints"))
                    },
                },
            },
        },
    )
    catalog = DataCatalog(
        {"cifar10_raw": MemoryDataset(synthetic_cifar10(25, 5))}
        | {
            name: MemoryDataset(copy_mode="assign")
            for name in pipeline.datasets()
            if name.endswith(("_model", "_probabilities"))
        }
    )
    for name, value in typed_parameters(pipeline, raw).items():
        catalog[name] = MemoryDataset(value, copy_mode="assign")
    catalog["training_callbacks"] = MemoryDataset([], copy_mode="assign")
    saved: dict[str, Any] = {}

    class Record:  # the runner frees in-memory data once used: keep every output
        @hook_impl
        def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
            saved[dataset_name] = data

    hooks = _create_hook_manager()
    hooks.register(Record())
    SequentialRunner().run(pipeline, catalog, hooks)
    return saved


def test_every_output_of_the_default_dag(outputs) -> None:
    assert set(outputs) >= {
        "dataset_summary",
        "sample_grid",
        "trained_model",
        "training_history",
        "training_config",
        "test_metrics",
        "validation_metrics",
        "classification_report",
        "test_predictions",
        "loss_curve",
        "accuracy_curve",
        "confusion_matrix_plot",
        "reliability_plot",
        "confident_mistakes_plot",
    }
    figures = [k for k in outputs if k.endswith(("_curve", "_plot", "_grid"))]
    assert all(isinstance(outputs[k], Figure) for k in figures)


def test_the_split_the_training_and_the_reports_fit_together(outputs) -> None:
    summary = outputs["dataset_summary"]
    # conf/smoke holds out a fifth of the 250 training images.
    assert summary["splits"]["train"]["num_images"] == 200
    assert summary["splits"]["validation"]["num_images"] == 50
    history = outputs["training_history"]
    assert isinstance(history, pd.DataFrame)
    assert history["epoch"].tolist() == [1, 2]
    metrics = outputs["test_metrics"]
    assert metrics["num_test_images"] == 50
    predictions = outputs["test_predictions"]
    assert np.isclose(
        (predictions["true_label"] == predictions["predicted_label"]).mean(),
        metrics["accuracy"],
    )
    assert outputs["validation_metrics"]["num_validation_images"] == 50
    assert len(outputs["training_config"]["fingerprint"]) == 64
    probabilities = outputs["trained_model"].predict(
        np.zeros((2, 32, 32, 3), np.uint8), verbose=0
    )
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
