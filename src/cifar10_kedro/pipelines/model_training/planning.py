"""How long a training will take on this machine, and the epochs that fit a budget.

``plan_training`` runs before the model is compiled. It times ``fit.probe_steps``
training steps on a copy of the model (``measure``: the real batches, their
augmentation and ``train_on_batch``, after one untimed warm-up step that traces the
step, at every image side that progressive resizing trains at; and as many validation
batches), estimates

    an epoch = steps_per_epoch x seconds a step at its side
               + validation batches x seconds a batch, if it is validated
    the training = the sum of its epochs + setup (the first warm-ups' extra time)

and logs it before the first epoch. With ``fit.time_budget_minutes`` it trains the
most epochs whose estimate fits the budget, at most ``fit.epochs``
(``choose_epochs``), and the schedule follows: ``compile_model`` spans it over the
planned epochs (so it still ends at its final learning rate) and the warm-up keeps
its share of the run (``lr_schedule.warmup_epochs`` x planned / configured; the
whitening bias's ``whitening_bias_epochs`` stay as they are). The planned ``fit`` and
``compile`` groups are what the later nodes read, so the training's fingerprint has
the planned epochs, and ``training_plan`` records the choice with its measurements.

Without a budget nothing that training computes changes: the planned groups are the
configured ones. The copy is a clone with the model's weights; the model itself is
not touched, and no random number of the training is drawn here (``train_model``
seeds its own). Under data parallelism there is no probe (it would measure one
device) and a budget is refused (``FitParams``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np

from cifar10_kedro.hardware import describe_device
from cifar10_kedro.model_card import model_precision

from .batches import TrainingBatches, epoch_sizes
from .fused import fused_batchnorm
from .nodes import compile_model, steps_per_epoch
from .params import CompileParams, FitParams

logger = logging.getLogger(__name__)

BUDGET = "model_training.fit.time_budget_minutes"
# The clock the probe reads (tests replace it with one that advances by known steps).
_clock = time.perf_counter


@dataclass(frozen=True)
class Probe:
    """What ``measure`` timed, in seconds."""

    steps: int
    # A step at full size.
    seconds_per_step: float
    seconds_per_validation_batch: float
    # The warm-ups' time beyond a measured step or batch: tracing, once a training.
    setup_seconds: float
    # A step at each image side the epochs train at (progressive resizing), full
    # size included.
    seconds_per_step_by_size: dict[int, float]


def _timed(call: Any) -> float:
    start = _clock()
    call()
    return _clock() - start


def measure(
    model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    fit: FitParams,
    compile: CompileParams,  # noqa: A002 - the parameter group's name
    seed: int,
) -> Probe:
    """Time ``fit.probe_steps`` training steps and validation batches on a copy of
    ``model``, each after one untimed warm-up."""
    probe = keras.models.clone_model(model)
    probe.set_weights(model.get_weights())
    for original, copy in zip(model.weights, probe.weights, strict=True):
        copy.trainable = original.trainable  # the whitening stem's fixed kernel
    compiling = logging.getLogger(compile_model.__module__)
    said, compiling.disabled = compiling.disabled, True  # the copy's: not news
    try:
        compile_model(probe, compile, fit, y_train)
    finally:
        compiling.disabled = said
    one_hot = compile.loss == "categorical_crossentropy"
    labels = keras.utils.to_categorical(y_train, 10) if one_hot else y_train
    batches = TrainingBatches.for_fit(x_train, labels, fit, seed)
    # The first epoch at each side (the last epoch's is full size): one timing each.
    first_epoch = {batches.size(e): e for e in reversed(range(fit.epochs))}
    full = batches.size(fit.epochs - 1)

    def step(epoch: int, number: int) -> None:
        images, targets = batches.batch(epoch, number % batches.steps_per_epoch)
        probe.train_on_batch(images, targets)

    validation = [
        x_val[start : start + fit.batch_size]
        for start in range(0, len(x_val), fit.batch_size)
    ]
    count = max(1, min(fit.probe_steps, len(validation)))

    def validate(number: int) -> None:
        images = validation[number % len(validation)]
        # What validation computes: the loss and metrics (the labels' values do not
        # change the time).
        shape = (len(images), 10) if one_hot else (len(images),)
        probe.test_on_batch(images, np.zeros(shape, labels.dtype))

    per_size: dict[int, float] = {}
    warm_extra = 0.0
    with fused_batchnorm(probe, fit.fused_batchnorm):
        for size, epoch in sorted(first_epoch.items()):
            warm_step = _timed(lambda e=epoch: step(e, 0))
            steps = [
                _timed(lambda e=epoch, n=n: step(e, n))
                for n in range(1, fit.probe_steps + 1)
            ]
            per_size[size] = float(np.mean(steps))
            # Training traces once (its input's sides left open); the probe's
            # train_on_batch traces again at each new side: not counted.
            warm_extra = warm_extra or max(0.0, warm_step - per_size[size])
    warm_val = _timed(lambda: validate(0))
    vals = [_timed(lambda n=n: validate(n)) for n in range(1, count + 1)]
    per_batch = float(np.mean(vals))
    return Probe(
        steps=fit.probe_steps,
        seconds_per_step=per_size[full],
        seconds_per_validation_batch=per_batch,
        setup_seconds=warm_extra + max(0.0, warm_val - per_batch),
        seconds_per_step_by_size=per_size,
    )


def epoch_seconds(
    probe: Probe, steps: int, validation_batches: int, size: int | None = None
) -> float:
    """Return the estimate of one epoch at image side ``size`` (full size by
    default): its steps and its validation batches."""
    per_step = (
        probe.seconds_per_step if size is None else probe.seconds_per_step_by_size[size]
    )
    return steps * per_step + validation_batches * probe.seconds_per_validation_batch


def training_seconds(
    probe: Probe, fit: FitParams, epochs: int, steps: int, validation_batches: int
) -> float:
    """Return the estimate of ``epochs`` epochs of ``fit`` (progressive resizing's
    phases spread over them, validation where ``fit`` validates) and the setup."""
    full = max(probe.seconds_per_step_by_size)
    sizes = epoch_sizes(fit.progressive_resizing, epochs, full)
    validated = set(fit.validation_epochs(epochs))
    return probe.setup_seconds + sum(
        epoch_seconds(
            probe, steps, validation_batches if number in validated else 0, size
        )
        for number, size in enumerate(sizes, start=1)
    )


def choose_epochs(
    fit: FitParams, estimate: Callable[[int], float], setup: float
) -> int:
    """Return ``fit.epochs``, or with a budget the most epochs whose ``estimate``
    (seconds, ``setup`` included) fits it (at most ``fit.epochs``); raise
    ``ValueError`` if not one epoch fits."""
    if fit.time_budget_minutes is None:
        return fit.epochs
    budget = fit.time_budget_minutes * 60
    fitting = [e for e in range(1, fit.epochs + 1) if estimate(e) <= budget]
    if not fitting:
        one = estimate(1)
        raise ValueError(
            f"{BUDGET} is {fit.time_budget_minutes:g} ({_duration(budget)}), but one "
            f"epoch takes about {_duration(one - setup)} on this machine "
            f"({describe_device()}), plus {_duration(setup)} of setup, measured by a "
            f"probe of {fit.probe_steps} step(s): not one epoch fits. Nothing was "
            f"trained. Set a budget of at least {one / 60:.2g} minutes, or null to "
            f"train model_training.fit.epochs ({fit.epochs}) epochs."
        )
    return max(fitting)


def planned_groups(
    fit: FitParams,
    compile: CompileParams,  # noqa: A002 - the parameter group's name
    epochs: int,
) -> tuple[FitParams, CompileParams]:
    """Return ``fit`` and ``compile`` for ``epochs`` epochs: the epochs replaced and
    the warm-up scaled to the same share of the run (themselves when ``epochs`` is
    ``fit.epochs``)."""
    if epochs == fit.epochs:
        return fit, compile
    schedule = compile.lr_schedule
    warmup = schedule.warmup_epochs * epochs / fit.epochs
    return fit.model_copy(update={"epochs": epochs}), compile.model_copy(
        update={"lr_schedule": schedule.model_copy(update={"warmup_epochs": warmup})}
    )


def plan_training(
    model: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    fit: FitParams,
    compile: CompileParams,  # noqa: A002 - the parameter group's name
    seed: int,
) -> tuple[dict[str, Any], FitParams, CompileParams]:
    """Return the training plan, and the ``fit`` and ``compile`` groups the training
    uses (see the module's docstring); log the estimate before training starts."""
    steps = steps_per_epoch(len(y_train), fit)
    validation_batches = math.ceil(len(x_val) / fit.batch_size)
    plan: dict[str, Any] = {
        "configured_epochs": fit.epochs,
        "epochs": fit.epochs,
        "time_budget_minutes": fit.time_budget_minutes,
        "probe_steps": fit.probe_steps,
        "steps_per_epoch": steps,
        "validation_batches": validation_batches,
        "batch_size": fit.batch_size,
        "device": describe_device(),
        "precision": model_precision(model),
        "backend": keras.backend.backend(),
    }
    probe = None
    if fit.probe_steps and fit.distribution.mode == "none":
        probe = measure(model, x_train, y_train, x_val, fit, compile, seed)
    elif fit.probe_steps:
        logger.info(
            "No estimate of the training time under data parallelism (mode '%s'): "
            "the probe measures one device.",
            fit.distribution.mode,
        )
    else:
        logger.info(
            "No estimate of the training time: model_training.fit.probe_steps is 0."
        )
    measured: dict[str, float | None] = dict.fromkeys(
        (
            "seconds_per_step",
            "seconds_per_validation_batch",
            "setup_seconds",
            "train_images_per_second",
            "estimated_epoch_seconds",
            "estimated_training_seconds",
            "seconds_per_step_by_size",
        )
    )
    epochs = fit.epochs
    if probe is not None:

        def estimate(count: int) -> float:
            return training_seconds(probe, fit, count, steps, validation_batches)

        epochs = choose_epochs(fit, estimate, probe.setup_seconds)
        measured = {
            **{k: v for k, v in asdict(probe).items() if k != "steps"},
            "train_images_per_second": (
                fit.batch_size / probe.seconds_per_step
                if probe.seconds_per_step > 0
                else None
            ),
            # At full size; the training's estimate counts every epoch's size.
            "estimated_epoch_seconds": epoch_seconds(probe, steps, validation_batches),
            "estimated_training_seconds": estimate(epochs),
        }
    planned_fit, planned_compile = planned_groups(fit, compile, epochs)
    plan |= {
        "epochs": epochs,
        "warmup_epochs": planned_compile.lr_schedule.warmup_epochs,
        # The image side of each planned epoch (progressive resizing).
        "epoch_sizes": list(
            epoch_sizes(fit.progressive_resizing, epochs, x_train.shape[1])
        ),
        **measured,
    }
    if probe is not None:
        logger.info(_estimate_message(plan))
    return plan, planned_fit, planned_compile


def _duration(seconds: float) -> str:
    if seconds < 10:  # noqa: PLR2004
        return f"{seconds:.1f} s"
    if seconds < 90:  # noqa: PLR2004
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:  # noqa: PLR2004
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _estimate_message(plan: dict[str, Any]) -> str:
    """The line logged before training: the estimate and how it was made."""
    budget = plan["time_budget_minutes"]
    chosen = (
        f"{BUDGET} {budget:g} allows {plan['epochs']} of the "
        f"{plan['configured_epochs']} configured epochs. "
        if budget is not None
        else ""
    )
    sides = plan["epoch_sizes"]
    if len(set(sides)) == 1:
        steps = (
            f"{plan['steps_per_epoch']} steps x {plan['seconds_per_step']:.3g} s a step"
        )
    else:  # progressive resizing: each side's epochs and step
        per_size = plan["seconds_per_step_by_size"]
        steps = (
            f"{plan['steps_per_epoch']} steps ("
            + "; ".join(
                f"{sides.count(side)} epochs at {side}x{side}: {per_size[side]:.3g} s a step"
                for side in sorted(set(sides))
            )
            + ")"
        )
    return (
        f"{chosen}Training will take about "
        f"{_duration(plan['estimated_training_seconds'])} on this machine "
        f"({plan['device']}, {plan['precision']}): {plan['epochs']} epochs x "
        f"({steps} "
        f"+ {plan['validation_batches']} validation batches x "
        f"{plan['seconds_per_validation_batch']:.3g} s) + "
        f"{_duration(plan['setup_seconds'])} setup (a probe of {plan['probe_steps']} "
        f"steps; {plan['train_images_per_second']:.0f} training images/s)."
    )
