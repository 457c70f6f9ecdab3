"""Tiny parameters and data that train in seconds, and the pipeline's nodes in order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from cifar10_kedro.pipelines.model_training.nodes import (
    build_model,
    compile_model,
    describe_training,
    train_model,
)
from cifar10_kedro.pipelines.model_training.params import ModelTrainingParams
from cifar10_kedro.variants import merged
from tests.conftest import base_params

__all__ = ["compiled", "merged", "tiny_data", "tiny_params", "train", "weights_equal"]


def tiny_params(
    tmp_path: Path, env: str | None = None, **changes: Any
) -> ModelTrainingParams:
    """The environment's model_training parameters, shrunk to train in seconds."""
    small = {
        "model": {
            "precision": "float32",
            "fast_cnn": {"widths": [8, 16], "whitening_images": 100, "dropout": 0.1},
        },
        "compile": {"optimizer": {"learning_rate": 0.05}},
        "fit": {
            "batch_size": 50,
            "epochs": 2,
            "verbose": 0,
            # Full size, validated every epoch: the tests that want the cheaper
            # epochs ask for them (the smoke environment runs the default's).
            "progressive_resizing": [],
            "validate_last_epochs": None,
            "checkpoint": {"state_dir": str(tmp_path / "checkpoints")},
        },
    }
    return base_params("model_training", merged(small, changes), env)


def tiny_data(seed: int = 0) -> tuple[np.ndarray, ...]:
    """200 training and 50 validation 32x32 RGB uint8 images, balanced classes.

    Each class has its own mean colour, so that a model can learn something.
    """
    rng = np.random.default_rng(seed)
    palette = rng.integers(40, 216, (10, 3))

    def make(per_class: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.permutation(np.repeat(np.arange(10), per_class))
        noise = rng.integers(-40, 41, (len(y), 32, 32, 3))
        x = np.clip(palette[y][:, None, None, :] + noise, 0, 255).astype(np.uint8)
        return x, y.astype(np.uint8)

    x_train, y_train = make(20)
    x_val, y_val = make(5)
    return x_train, y_train, x_val, y_val


def compiled(params: ModelTrainingParams, x_train, y_train) -> keras.Model:
    """build_model then compile_model, as the pipeline runs them."""
    model = build_model(params.model, params.seed, x_train)
    return compile_model(model, params.compile, params.fit, y_train)


def train(
    params: ModelTrainingParams,
    data: tuple[np.ndarray, ...] | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> tuple[keras.Model, pd.DataFrame]:
    """Every model_training node in order, each call a fresh model ("a new process");
    ``callbacks`` as the tracking hook gives ``train_model`` them."""
    x_train, y_train, x_val, y_val = data or tiny_data()
    config = describe_training(
        params.model, params.compile, params.fit, params.seed, *(data or tiny_data())
    )
    model = compiled(params, x_train, y_train)
    return train_model(
        model,
        x_train,
        y_train,
        x_val,
        y_val,
        params.fit,
        params.seed,
        config,
        callbacks=callbacks,
    )


def weights_equal(a: keras.Model, b: keras.Model) -> bool:
    return all(
        np.array_equal(x, y)
        for x, y in zip(a.get_weights(), b.get_weights(), strict=True)
    )
