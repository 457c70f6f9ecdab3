"""Nodes that build, compile and train the Keras model."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from .architectures import assemble, augmentation_block

logger = logging.getLogger(__name__)

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": keras.optimizers.SGD,
}
LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy")
HISTORY_COLUMNS = [
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "seconds",
]


def resolve_precision(precision: str) -> str:
    """Return the Keras dtype policy for ``precision`` ('auto' picks by hardware).

    'auto' is mixed bfloat16 on a GPU or a CPU with native bfloat16 (AVX512-BF16 or
    AMX), where it is about twice as fast, and float32 elsewhere.
    """
    if precision != "auto":
        return precision
    if keras.backend.backend() == "jax":
        import jax  # noqa: PLC0415 - only present under the JAX backend

        if jax.default_backend() == "gpu":
            return "mixed_bfloat16"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "float32"
    return (
        "mixed_bfloat16"
        if ("avx512_bf16" in flags or "amx_bf16" in flags)
        else "float32"
    )


def _learning_rate(
    params: dict[str, Any], steps_per_epoch: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Return a constant rate or a warm-up-then-cosine schedule from parameters."""
    peak = params["optimizer"]["learning_rate"]
    schedule = params.get("lr_schedule") or {"name": "constant"}
    if schedule["name"] == "constant":
        return peak
    if schedule["name"] != "warmup_cosine":
        raise ValueError(
            f"model_training.lr_schedule.name is '{schedule['name']}'; expected "
            "'constant' or 'warmup_cosine'."
        )
    warmup_steps = max(1, round(schedule.get("warmup_epochs", 1) * steps_per_epoch))
    total_steps = params["epochs"] * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak * schedule.get("initial_fraction", 0.1),
        warmup_target=peak,
        warmup_steps=warmup_steps,
        decay_steps=max(1, total_steps - warmup_steps),
        alpha=schedule.get("final_fraction", 0.0),
    )


def build_model(params: dict[str, Any], y_train: np.ndarray) -> keras.Model:
    """Return the compiled Keras model named by ``params['architecture']``."""
    keras.utils.set_random_seed(params["seed"])
    dtype = resolve_precision(params.get("precision", "float32"))
    model = assemble(
        params["architecture"],
        (params.get("architectures") or {}).get(params["architecture"]) or {},
        augmentation_block(params.get("augmentation") or {}, params["seed"]),
        dtype,
    )
    name = params["optimizer"]["name"]
    if name not in OPTIMIZERS:
        raise ValueError(
            f"model_training.optimizer.name is '{name}'; expected one of {sorted(OPTIMIZERS)}."
        )
    optimizer_params = dict(params["optimizer"].get(name) or {})
    steps_per_epoch = math.ceil(len(y_train) / params["batch_size"])
    optimizer_params["learning_rate"] = _learning_rate(params, steps_per_epoch)
    loss_name = params["loss"]
    if loss_name not in LOSSES:
        raise ValueError(
            f"model_training.loss is '{loss_name}'; expected one of {list(LOSSES)}."
        )
    loss = (
        keras.losses.CategoricalCrossentropy(
            label_smoothing=params.get("label_smoothing", 0.0)
        )
        if loss_name == "categorical_crossentropy"
        else keras.losses.SparseCategoricalCrossentropy()
    )
    model.compile(
        optimizer=OPTIMIZERS[name](**optimizer_params),
        loss=loss,
        metrics=list(params["metrics"]),
    )
    logger.info(
        "Built '%s' (%s parameters, %s) with %s.",
        params["architecture"],
        f"{model.count_params():,}",
        dtype,
        name,
    )
    return model


class EpochRecorder(keras.callbacks.Callback):
    """Records seconds and learning rate per epoch, and logs one line per epoch."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs
        self.seconds: list[float] = []
        self.learning_rates: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)
        lr = self.model.optimizer.learning_rate
        self.learning_rates.append(float(keras.ops.convert_to_numpy(lr)))
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in (logs or {}).items())
        logger.info(
            "Epoch %d/%d (%.1f s): %s",
            epoch + 1,
            self.epochs,
            self.seconds[-1],
            metrics,
        )


def history_table(
    history: dict[str, list[float]], recorder: EpochRecorder
) -> pd.DataFrame:
    """Return the Keras history as one row per epoch with the standard columns."""
    metric = next(
        k
        for k in history
        if k not in {"loss", "learning_rate"} and not k.startswith("val_")
    )
    epochs = len(history["loss"])
    return pd.DataFrame(
        {
            "epoch": np.arange(1, epochs + 1),
            "loss": history["loss"],
            "accuracy": history[metric],
            "val_loss": history["val_loss"],
            "val_accuracy": history[f"val_{metric}"],
            "learning_rate": recorder.learning_rates[:epochs],
            "seconds": recorder.seconds[:epochs],
        },
        columns=HISTORY_COLUMNS,
    )


def train_model(
    model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    params: dict[str, Any],
) -> tuple[keras.Model, pd.DataFrame]:
    """Return the best model on the validation split and its per-epoch history."""
    keras.utils.set_random_seed(params["seed"])
    if isinstance(model.loss, keras.losses.CategoricalCrossentropy):
        y_train, y_val = (keras.utils.to_categorical(y, 10) for y in (y_train, y_val))
    stopping = params["early_stopping"]
    checkpoint = Path(params["checkpoint"]["filepath"])
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.unlink(missing_ok=True)
    recorder = EpochRecorder(params["epochs"])
    callbacks = [
        recorder,
        keras.callbacks.ModelCheckpoint(
            str(checkpoint),
            monitor=params["checkpoint"]["monitor"],
            save_best_only=True,
        ),
        keras.callbacks.EarlyStopping(
            monitor=stopping["monitor"],
            patience=stopping["patience"],
            restore_best_weights=stopping.get("restore_best_weights", True),
        ),
    ]
    fit = model.fit(
        x_train,
        y_train,
        batch_size=params["batch_size"],
        epochs=params["epochs"],
        validation_data=(x_val, y_val),
        callbacks=callbacks,
        shuffle=True,
        verbose=params.get("verbose", "auto"),
    )
    history = history_table(fit.history, recorder)
    best = keras.saving.load_model(checkpoint)
    return best, history
