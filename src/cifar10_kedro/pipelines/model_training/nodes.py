"""Nodes that describe, build, compile and train the Keras model."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

import cifar10_kedro
from cifar10_kedro.hardware import (
    ONEDNN_ISA_VARIABLE,
    has_gpu,
    has_native_bfloat16,
    onednn_cannot_run_bfloat16,
    onednn_isa_cap,
)

from . import distribution
from .architectures import WHITENING_LAYER, assemble, dirac_kernel, whitening_weights
from .batches import TrainingBatches, validation_batch_size, validation_inputs
from .fused import fused_batchnorm
from .optimizers import OPTIMIZERS, WarmupLinearDecay
from .params import (
    CompileParams,
    FitParams,
    LRScheduleParams,
    ModelParams,
    ModelTrainingParams,
)
from .training_state import (
    HISTORY_COLUMNS,
    CheckpointStore,
    NonFiniteLossError,
    ResumableTraining,
    TrainingState,
)

logger = logging.getLogger(__name__)

# Parameters that do not change what training computes (data parallelism computes
# what one device does, but for floating-point rounding: a checkpoint resumes on
# any number of devices). The budget and the probe decide the epochs, which are
# there themselves (describe_training reads the planned fit group: ``planning``).
_NOT_TRAINING = {
    "resume",
    "verbose",
    "checkpoint",
    "distribution",
    "time_budget_minutes",
    "probe_steps",
}


def resolve_precision(precision: str) -> str:
    """Return the Keras dtype policy for ``precision`` ('auto' picks by hardware).

    'auto' is mixed bfloat16 on a GPU or a CPU with native bfloat16 (AVX512-BF16 or
    AMX, unless ``ONEDNN_MAX_CPU_ISA`` caps oneDNN below it), where it is about twice
    as fast, and float32 elsewhere. An explicit 'mixed_bfloat16' that TensorFlow could
    not run here (``hardware.onednn_cannot_run_bfloat16``) is a ValueError.
    """
    if precision == "auto":
        native = has_gpu() or has_native_bfloat16()
        return "mixed_bfloat16" if native else "float32"
    if (
        precision == "mixed_bfloat16"
        and keras.backend.backend() == "tensorflow"
        and onednn_cannot_run_bfloat16()
    ):
        raise ValueError(
            "model_training.model.precision is 'mixed_bfloat16', but "
            f"{ONEDNN_ISA_VARIABLE}={onednn_isa_cap()} caps oneDNN at an ISA with no "
            "bfloat16 kernel, while TensorFlow sends this CPU's bfloat16 ops to "
            "oneDNN: every convolution would fail. Use precision 'float32' or 'auto' "
            f"(float32 under this cap), or unset {ONEDNN_ISA_VARIABLE}."
        )
    return precision


def _digest(array: np.ndarray) -> dict[str, Any]:
    return {
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "sha256": hashlib.sha256(np.ascontiguousarray(array).data).hexdigest(),
    }


def describe_training(
    model: ModelParams,
    compile: CompileParams,  # noqa: A002 - the parameter group's name
    fit: FitParams,
    seed: int,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
) -> dict[str, Any]:
    """Return what determines a training run, and its ``fingerprint`` (a SHA-256).

    The parameters that change what training computes, the resolved precision, a
    digest of the data, and the versions of this package and Keras and the backend:
    a checkpoint resumes only a run with the same fingerprint.
    """
    params = ModelTrainingParams(seed=seed, model=model, compile=compile, fit=fit)
    relevant = params.model_dump(mode="json")
    relevant["fit"] = {
        k: v for k, v in relevant["fit"].items() if k not in _NOT_TRAINING
    }
    # Only the checkpoint's monitor changes the result (which epoch is returned).
    relevant["fit"]["checkpoint_monitor"] = params.fit.checkpoint.monitor
    config: dict[str, Any] = {
        "model_training": relevant,
        "precision": resolve_precision(params.model.precision),
        "data": {
            name: _digest(array)
            for name, array in (
                ("x_train", x_train),
                ("y_train", y_train),
                ("x_val", x_val),
                ("y_val", y_val),
            )
        },
        "versions": {
            "cifar10_kedro": cifar10_kedro.__version__,
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
        },
    }
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    config["fingerprint"] = hashlib.sha256(canonical.encode()).hexdigest()
    return config


def build_model(params: ModelParams, seed: int, x_train: np.ndarray) -> keras.Model:
    """Return the uncompiled model ``params.architecture`` names, initialised.

    ``fast_cnn``'s whitening stem is set from a seeded sample of the training images
    and its convolutions start as the identity where ``init`` is 'dirac'. Under data
    parallelism its variables are created replicated on every device.
    """
    keras.utils.set_random_seed(seed)
    with distribution.scope():
        return _initialised(params, seed, x_train)


def _initialised(params: ModelParams, seed: int, x_train: np.ndarray) -> keras.Model:
    model = assemble(params, resolve_precision(params.precision), seed)
    options = getattr(params, params.architecture)
    if getattr(options, "stem", None) == "whitening":
        count = min(len(x_train), options.whitening_images)
        sample = np.random.default_rng(seed).choice(len(x_train), count, replace=False)
        layer = model.get_layer(WHITENING_LAYER)
        layer.set_weights(list(whitening_weights(x_train[np.sort(sample)])))
        layer.kernel.trainable = False  # fixed; the bias may train (compile_model)
    if getattr(options, "init", "default") == "dirac":
        for layer in model.layers:
            if isinstance(layer, keras.layers.Conv2D) and layer.name != WHITENING_LAYER:
                layer.kernel.assign(
                    dirac_kernel(keras.ops.convert_to_numpy(layer.kernel))
                )
    logger.info(
        "Built '%s' (%s parameters, %s).",
        params.architecture,
        f"{model.count_params():,}",
        resolve_precision(params.precision),
    )
    return model


def _learning_rate(
    peak: float, schedule: LRScheduleParams, steps_per_epoch: int, total_steps: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Return a constant rate, or a warm-up followed by a cosine or linear decay."""
    if schedule.name == "constant":
        return peak
    warmup_steps = round(schedule.warmup_epochs * steps_per_epoch)
    if schedule.name == "warmup_linear":
        return WarmupLinearDecay(
            peak=peak,
            initial=peak * schedule.initial_fraction,
            final=peak * schedule.final_fraction,
            warmup_steps=warmup_steps,
            total_steps=total_steps,
        )
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak * schedule.initial_fraction,
        warmup_target=peak,
        warmup_steps=max(1, warmup_steps),
        decay_steps=max(1, total_steps - warmup_steps),
        alpha=schedule.final_fraction,
    )


def steps_per_epoch(train_images: int, fit: FitParams) -> int:
    """Return the optimizer steps of one epoch over ``train_images`` images."""
    whole, rest = divmod(train_images, fit.batch_size)
    return whole if fit.drop_remainder else whole + bool(rest)


def compile_model(
    model: keras.Model, params: CompileParams, fit: FitParams, y_train: np.ndarray
) -> keras.Model:
    """Return ``model`` compiled with the optimizer, schedule, loss and metrics of
    ``params`` (the schedule spans ``fit.epochs`` epochs over ``y_train``)."""
    with distribution.scope():  # the optimizer's variables beside the model's
        return _compiled(model, params, fit, y_train)


def _compiled(
    model: keras.Model, params: CompileParams, fit: FitParams, y_train: np.ndarray
) -> keras.Model:
    settings = params.optimizer
    steps = steps_per_epoch(len(y_train), fit)
    total = steps * fit.epochs
    options = {
        **getattr(settings, settings.name).model_dump(),
        "learning_rate": _learning_rate(
            settings.learning_rate, params.lr_schedule, steps, total
        ),
    }
    if settings.weight_decay is not None:
        options["weight_decay"] = settings.weight_decay
    plain, recipe = OPTIMIZERS[settings.name]
    extras = {
        "batchnorm_bias_lr_scale": settings.batchnorm_bias_lr_scale,
        "whitening_bias_epochs": settings.whitening_bias_epochs,
    }
    if settings.lookahead is not None:
        extras |= {
            "lookahead_every": settings.lookahead.every,
            "lookahead_decay": settings.lookahead.decay,
            "lookahead_power": settings.lookahead.power,
        }
    whitening = WHITENING_LAYER in {layer.name for layer in model.layers}
    if whitening and settings.whitening_bias_epochs == 0:
        model.get_layer(WHITENING_LAYER).trainable = False
    needs_recipe = (
        settings.lookahead is not None
        or settings.batchnorm_bias_lr_scale != 1.0
        or (whitening and settings.whitening_bias_epochs > 0)
    )
    optimizer = (
        recipe(**options, **extras, steps_per_epoch=steps, total_steps=total)
        if needs_recipe
        else plain(**options)
    )
    if any(layer.dtype_policy.name == "mixed_float16" for layer in model.layers):
        # float16 gradients underflow without loss scaling (bfloat16's do not).
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    loss = (
        keras.losses.CategoricalCrossentropy(label_smoothing=params.label_smoothing)
        if params.loss == "categorical_crossentropy"
        else keras.losses.SparseCategoricalCrossentropy()
    )
    model.compile(optimizer=optimizer, loss=loss, metrics=list(params.metrics))
    logger.info(
        "Compiled with %s (%s), %d steps an epoch.",
        type(optimizer).__name__,
        params.lr_schedule.name,
        steps,
    )
    return model


def train_model(
    model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    fit: FitParams,
    seed: int,
    training_config: dict[str, Any],
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> tuple[keras.Model, pd.DataFrame]:
    """Return the best model on the validation split and its per-epoch history.

    One ``fit`` over epochs whose batches are a function of the seed; after each
    epoch the state is checkpointed (``training_state``), so that running the same
    command after an interruption continues from the last completed epoch with the
    same result. A NaN or infinite loss stops training with ``NonFiniteLossError``,
    keeping the best model so far. The history's ``best`` column marks the epoch
    of the returned model.

    Under data parallelism (``distribution``) every process runs this node: each
    feeds its rows of every batch, process 0 alone writes the checkpoint, and all
    return the same one-device model, loaded from process 0's checkpoint (the
    ``state_dir`` must be on a filesystem that every process sees).
    ``callbacks`` (the ``training_callbacks`` dataset, which the tracking hook fills)
    are called after the checkpoint's own, each epoch.
    """
    keras.utils.set_random_seed(seed)
    one_hot = isinstance(model.loss, keras.losses.CategoricalCrossentropy)
    labels = {
        "train": keras.utils.to_categorical(y_train, 10) if one_hot else y_train,
        "val": keras.utils.to_categorical(y_val, 10) if one_hot else y_val,
    }
    shard = distribution.batch_shard()
    batches = TrainingBatches.for_fit(x_train, labels["train"], fit, seed, shard)
    validation = validation_inputs(x_val, labels["val"], fit.batch_size, shard)
    store = CheckpointStore(Path(fit.checkpoint.state_dir), training_config)
    with distribution.scope():
        state = store.start(model, fit)
        tracker = ResumableTraining(store, state, fit)
        if not state.finished:
            with fused_batchnorm(model, fit.fused_batchnorm):
                model.fit(
                    **batches.fit_inputs(state.epoch, fit.epochs),
                    epochs=fit.epochs,
                    initial_epoch=state.epoch,
                    validation_data=validation,
                    validation_freq=fit.validation_epochs(),
                    validation_batch_size=validation_batch_size(fit.batch_size, shard),
                    callbacks=[tracker, *(callbacks or [])],
                    shuffle=False,  # the batches are already in their seeded order
                    verbose=fit.verbose,
                )
    if tracker.failure:
        raise NonFiniteLossError(
            _divergence_message(tracker.failure, state, fit, store)
        )
    if state.stopped_early:
        logger.info(
            "Stopped early after epoch %d of %d: %s did not improve for %d epochs.",
            state.epoch,
            fit.epochs,
            fit.early_stopping.monitor,
            state.stopping_wait,
        )
    # Outside the distribution: an ordinary one-device model, whatever trained it.
    distribution.sync("train_model: process 0 wrote the last checkpoint")
    best = keras.saving.load_model(store.best_model_path(state), compile=False)
    distribution.sync("train_model: every process loaded the best model")
    history = pd.DataFrame(tracker.history(), columns=HISTORY_COLUMNS)
    return best, history


def _divergence_message(
    failure: str, state: TrainingState, fit: FitParams, store: CheckpointStore
) -> str:
    kept = (
        f"The best model so far (epoch {state.best_epoch}, "
        f"{fit.checkpoint.monitor}={state.best_value:.4f}) is kept at "
        f"{store.best_model_path(state)}"
        if state.best_epoch
        else "No epoch completed, so there is no best model to keep"
    )
    return (
        f"Training diverged: {failure}. {kept}; the trained model, history and "
        "reports of earlier runs are untouched. Lower "
        "model_training.compile.optimizer.learning_rate or check the data, then run "
        "again."
    )
