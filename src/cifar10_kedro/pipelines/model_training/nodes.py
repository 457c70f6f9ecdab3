"""Nodes that build, compile and train the Keras model."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from .architectures import (
    WHITENING_LAYER,
    assemble,
    augmentation_block,
    whitening_weights,
)
from .callbacks import EpochRecorder, RunProgress, StopOnNonFiniteLoss
from .training_state import TrainingCheckpoint, TrainingState, training_config

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


def build_model(
    params: dict[str, Any], x_train: np.ndarray, y_train: np.ndarray
) -> keras.Model:
    """Return the compiled Keras model named by ``params['architecture']``."""
    keras.utils.set_random_seed(params["seed"])
    dtype = resolve_precision(params.get("precision", "float32"))
    options = (params.get("architectures") or {}).get(params["architecture"]) or {}
    model = assemble(
        params["architecture"],
        options,
        augmentation_block(params.get("augmentation") or {}, params["seed"]),
        dtype,
    )
    if any(layer.name == WHITENING_LAYER for layer in model.layers):
        count = min(len(x_train), options.get("whitening_images", 5000))
        sample = np.random.default_rng(params["seed"]).choice(
            len(x_train), count, replace=False
        )
        model.get_layer(WHITENING_LAYER).set_weights(
            list(whitening_weights(x_train[np.sort(sample)]))
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


class NonFiniteLossError(RuntimeError):
    """Training diverged: the loss became NaN or infinite."""


def _history_row(
    epoch: int, logs: dict[str, float], recorder: EpochRecorder
) -> dict[str, float]:
    """Return one history row (the standard columns) from a one-epoch fit's logs."""
    metric = next(
        k
        for k in logs
        if k not in {"loss", "learning_rate"} and not k.startswith("val_")
    )
    return {
        "epoch": epoch + 1,
        "loss": logs["loss"],
        "accuracy": logs[metric],
        "val_loss": logs["val_loss"],
        "val_accuracy": logs[f"val_{metric}"],
        "learning_rate": recorder.learning_rates[-1],
        "seconds": recorder.seconds[-1],
    }


def _epoch_order(size: int, seed: int, epoch: int) -> np.ndarray:
    """Return the shuffled order of the training set for ``epoch``.

    A function of (seed, epoch) alone, so that a resumed run sees the same batches as
    an uninterrupted one.
    """
    return np.random.default_rng([seed, epoch]).permutation(size)


def fit_inputs(x: np.ndarray, y: np.ndarray, batch_size: int) -> dict[str, Any]:
    """Return ``fit``'s data arguments: batches in order, one pass per epoch.

    Under TensorFlow a ``tf.data`` pipeline with autotuning switched off: with the
    autotuned pipeline Keras builds from arrays, the first batch of an epoch often
    waited ~25 s on 2 cores (measured), about a third of each epoch's time.
    """
    if keras.backend.backend() != "tensorflow":
        return {"x": x, "y": y, "batch_size": batch_size}
    import tensorflow as tf  # noqa: PLC0415 - only under the TensorFlow backend

    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_optimization.apply_default_optimizations = False
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    return {"x": dataset.prefetch(1).with_options(options)}


def train_model(
    model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    params: dict[str, Any],
) -> tuple[keras.Model, pd.DataFrame]:
    """Return the best model on the validation split and its per-epoch history.

    After each epoch the state is checkpointed (``training_state``), so that running
    the same command after an interruption continues from the last completed epoch
    with the same result; other parameters or data start afresh. A NaN or infinite
    loss stops training with ``NonFiniteLossError``, keeping the best model so far.
    """
    keras.utils.set_random_seed(params["seed"])
    labels = {"train": y_train, "val": y_val}
    if isinstance(model.loss, keras.losses.CategoricalCrossentropy):
        labels = {k: keras.utils.to_categorical(y, 10) for k, y in labels.items()}
    config = training_config(
        params,
        resolve_precision(params.get("precision", "float32")),
        {"x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val},
    )
    checkpoint = TrainingCheckpoint(
        Path(params["checkpoint"]["state_dir"]), Path(params["checkpoint"]["filepath"])
    )
    state = checkpoint.start(model, config, resume=params.get("resume", True))
    recorder, guard = EpochRecorder(params["epochs"]), StopOnNonFiniteLoss()
    stopping = params["early_stopping"]
    # One shuffled copy of the training set, refilled each epoch rather than re-allocated.
    x_epoch, y_epoch = np.empty_like(x_train), np.empty_like(labels["train"])
    val = fit_inputs(x_val, labels["val"], params["batch_size"])
    validation = val["x"] if len(val) == 1 else (val["x"], val["y"])
    for epoch in range(state.epoch, params["epochs"]):
        if state.stopped_early:
            break
        order = _epoch_order(len(y_train), params["seed"], epoch)
        np.take(x_train, order, axis=0, out=x_epoch)
        np.take(labels["train"], order, axis=0, out=y_epoch)
        fit = model.fit(
            **fit_inputs(x_epoch, y_epoch, params["batch_size"]),
            initial_epoch=epoch,
            epochs=epoch + 1,
            validation_data=validation,
            callbacks=[RunProgress(params["epochs"]), recorder, guard],
            shuffle=False,  # _epoch_order shuffles
            verbose=params.get("verbose", "auto"),
        )
        if guard.failure:
            raise NonFiniteLossError(_divergence_message(guard.failure, state, params))
        logs = {k: float(v[-1]) for k, v in fit.history.items()}
        improved = state.end_epoch(
            _history_row(epoch, logs, recorder),
            logs,
            monitor=params["checkpoint"]["monitor"],
            stopping_monitor=stopping["monitor"],
            patience=stopping["patience"],
        )
        checkpoint.save(model, state, improved)
    if state.stopped_early:
        logger.info(
            "Stopped early after epoch %d: %s did not improve for %d epochs.",
            state.epoch,
            stopping["monitor"],
            state.stopping_wait,
        )
    best = keras.saving.load_model(checkpoint.best_path)
    history = pd.DataFrame(state.history, columns=HISTORY_COLUMNS)
    checkpoint.clear()  # finished: a new run of the same command starts afresh
    return best, history


def _divergence_message(failure: str, state: TrainingState, params: dict) -> str:
    kept = (
        f"The best model so far (epoch {state.best_epoch}, "
        f"{params['checkpoint']['monitor']}={state.best_value:.4f}) is kept at "
        f"{params['checkpoint']['filepath']}"
        if state.best_epoch
        else "No epoch completed, so there is no best model to keep"
    )
    return (
        f"Training diverged: {failure}. {kept}; the trained model, history and "
        "reports of earlier runs are untouched. Lower "
        "model_training.optimizer.learning_rate (now "
        f"{params['optimizer']['learning_rate']}) or check the data, then run again."
    )
