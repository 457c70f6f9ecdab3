"""Typed parameters of the ``model_training`` pipeline (``params:model_training.*``).

One group per node: ``model`` for ``build_model``, ``compile`` for ``compile_model``,
``fit`` for ``train_model``; ``seed`` drives all of their randomness. Every value is
in ``conf/base/parameters_model_training.yml`` (see ``params_base``); an ingredient of
the training recipe is switched off there by its neutral value (``lookahead: null``,
``head_scale: 1.0``, ...).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from cifar10_kedro.params_base import (
    NonEmptyStr,
    NonNegativeFloat,
    NonNegativeInt,
    OpenUnitFloat,
    Params,
    PositiveFloat,
    PositiveInt,
    Seed,
    UnitFloat,
)

Architecture = Literal["fast_cnn", "notebook_cnn"]
OptimizerName = Literal["adam", "adamw", "sgd"]
LossName = Literal["categorical_crossentropy", "sparse_categorical_crossentropy"]
# The accuracy metrics each loss's labels allow: one-hot for the categorical loss,
# integers for the sparse one ('accuracy' lets Keras pick the right one).
METRICS_FOR_LOSS = {
    "categorical_crossentropy": ("accuracy", "categorical_accuracy"),
    "sparse_categorical_crossentropy": ("accuracy", "sparse_categorical_accuracy"),
}
Metric = Literal["accuracy", "categorical_accuracy", "sparse_categorical_accuracy"]
# What training logs each epoch; 'accuracy' is the first metric, whatever its name.
Monitor = Literal["loss", "accuracy", "val_loss", "val_accuracy"]


# ------------------------------------------------------------------ build_model


class BatchNormParams(Params):
    momentum: OpenUnitFloat
    epsilon: PositiveFloat
    # A learned per-channel scale (gamma); without it BN only centres and shifts.
    scale: bool


class FastCNNParams(Params):
    """``fast_cnn``: a stem, then per width conv-pool-BN-act-conv-BN-act, a global
    max pool and a linear head (the airbench family of networks)."""

    # whitening: a fixed 2x2 conv whose filters whiten the training images' patches;
    # conv: a trained 3x3 conv of stem_width channels.
    stem: Literal["conv", "whitening"]
    stem_width: PositiveInt
    whitening_images: PositiveInt
    widths: Annotated[list[PositiveInt], Field(min_length=1)]
    activation: Literal["relu", "gelu"]
    # dirac: each conv starts as the identity on its first input-many filters.
    init: Literal["default", "dirac"]
    batchnorm: BatchNormParams
    # Logits are multiplied by this before the softmax.
    head_scale: PositiveFloat
    dropout: Annotated[float, Field(ge=0, lt=1)]


class NotebookCNNParams(Params):
    """The notebook's model has no options."""


class AugmentationLayersParams(Params):
    """Random Keras preprocessing layers inside the model, active only in training
    (the notebook's ``ImageDataGenerator``); 0 degrees and 0 shifts switch them off."""

    rotation_degrees: Annotated[float, Field(ge=0, le=180)]
    width_shift: UnitFloat
    height_shift: UnitFloat
    fill_mode: Literal["reflect", "wrap", "constant", "nearest"]
    interpolation: Literal["nearest", "bilinear"]


class ModelParams(Params):
    """What ``build_model`` assembles (``params:model_training.model``)."""

    architecture: Architecture
    # auto: mixed bfloat16 on a GPU (any backend) and on CPUs with native bfloat16.
    precision: Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"]
    fast_cnn: FastCNNParams
    notebook_cnn: NotebookCNNParams
    augmentation_layers: AugmentationLayersParams


# ---------------------------------------------------------------- compile_model


class SGDOptions(Params):
    momentum: UnitFloat
    nesterov: bool


class AdamOptions(Params):
    beta_1: UnitFloat
    beta_2: UnitFloat
    epsilon: PositiveFloat
    amsgrad: bool


class LookaheadParams(Params):
    """Every ``every`` steps the weights are averaged into a slow copy and reset to it:
    slow = d * slow + (1 - d) * weights, with d = decay * (step / total) ** power."""

    every: PositiveInt
    decay: OpenUnitFloat
    power: NonNegativeFloat


class OptimizerParams(Params):
    name: OptimizerName
    learning_rate: PositiveFloat
    # Decoupled weight decay, per step and scaled by the learning rate (Keras' rule).
    weight_decay: NonNegativeFloat | None
    sgd: SGDOptions
    adam: AdamOptions
    adamw: AdamOptions
    # Gradients of BatchNorm biases are multiplied by this: with SGD, a learning rate
    # that many times higher for them, their weight decay unchanged.
    batchnorm_bias_lr_scale: PositiveFloat
    # The whitening stem's bias trains this many epochs, then stays (0: never trains).
    whitening_bias_epochs: NonNegativeFloat
    lookahead: LookaheadParams | None

    @model_validator(mode="after")
    def _scale_needs_sgd(self) -> OptimizerParams:
        if self.batchnorm_bias_lr_scale != 1.0 and self.name != "sgd":
            raise ValueError(
                f"batchnorm_bias_lr_scale is {self.batchnorm_bias_lr_scale} with the "
                f"'{self.name}' optimizer, which normalises gradient scale away; "
                "expected 1.0 unless name is 'sgd'"
            )
        return self


class LRScheduleParams(Params):
    # constant; warmup_cosine or warmup_linear: a linear warm-up from
    # initial_fraction of the rate over warmup_epochs, then a cosine or linear decay
    # to final_fraction of it at the last step.
    name: Literal["constant", "warmup_cosine", "warmup_linear"]
    warmup_epochs: NonNegativeFloat
    initial_fraction: UnitFloat
    final_fraction: UnitFloat


class CompileParams(Params):
    """What ``compile_model`` sets up (``params:model_training.compile``)."""

    optimizer: OptimizerParams
    lr_schedule: LRScheduleParams
    loss: LossName
    # Only the categorical loss (one-hot labels) can smooth labels.
    label_smoothing: Annotated[float, Field(ge=0, lt=1)]
    metrics: Annotated[list[Metric], Field(min_length=1)]

    @model_validator(mode="after")
    def _fits_the_loss(self) -> CompileParams:
        if self.label_smoothing > 0 and self.loss != "categorical_crossentropy":
            raise ValueError(
                f"label_smoothing is {self.label_smoothing} but loss is '{self.loss}', "
                "which cannot smooth labels; expected label_smoothing 0 with that loss, "
                "or loss 'categorical_crossentropy'"
            )
        allowed = METRICS_FOR_LOSS[self.loss]
        wrong = [m for m in self.metrics if m not in allowed]
        if wrong:
            raise ValueError(
                f"metrics {wrong} do not fit loss '{self.loss}' (its labels are "
                f"{'one-hot' if self.loss == 'categorical_crossentropy' else 'integers'}"
                f"); expected metrics among {list(allowed)}"
            )
        return self


# ------------------------------------------------------------------ train_model


class BatchAugmentationParams(Params):
    """Augmentation of each training batch in the input pipeline, a function of
    the seed, the epoch and the batch (so that a resumed run sees the same images)."""

    # random: each image mirrored with probability 1/2; alternating: half of the
    # images mirrored in even epochs and the other half in odd epochs.
    flip: Literal["none", "random", "alternating"]
    # Random translation by up to this many pixels, borders reflected.
    translate: NonNegativeInt


class ResizePhase(Params):
    """One phase of progressive resizing: ``share`` of the run's epochs on training
    images scaled down to ``size`` x ``size``."""

    # The network is fully convolutional up to a global max-pool: any side from 12
    # (after the stem and three 2x2 pools, at least one pixel) to 31 trains it.
    size: Annotated[int, Field(ge=12, le=31)]
    share: OpenUnitFloat


class EarlyStoppingParams(Params):
    monitor: Monitor
    # Epochs without improvement before training stops; None never stops early.
    patience: PositiveInt | None


class CheckpointParams(Params):
    # The epoch whose model is returned: the best on `monitor` (losses fall, the rest
    # rise).
    monitor: Monitor
    # Where training keeps, after every epoch, the best model so far and what an
    # interrupted run needs to resume: one folder per training configuration.
    state_dir: NonEmptyStr


class DistributionParams(Params):
    """Where ``train_model`` trains: one device, or data-parallel over several.

    Under data parallelism every device holds the whole model and trains on its
    share of each global batch of ``batch_size`` images (Keras' distribution API,
    JAX backend only); the result equals a one-device run's at the same batch size
    but for floating-point rounding. The topology of a multi-process job (the
    coordinator's address, the number of processes, this process's id) comes from
    the environment that started it: ``kedro launch``, SLURM's srun or Open MPI.
    """

    # none: the backend's default device. data_parallel: every device this process
    # sees (the GPUs of one machine). multi_process: every device of every process
    # of the job, one process a host or a GPU; process 0 writes the outputs.
    mode: Literal["none", "data_parallel", "multi_process"]


class FitParams(Params):
    """How ``train_model`` trains (``params:model_training.fit``)."""

    batch_size: PositiveInt
    epochs: PositiveInt
    # Drop each epoch's last, smaller batch (the images left out change every epoch).
    drop_remainder: bool
    augmentation: BatchAugmentationParams
    # Progressive resizing: the first epochs, phase after phase, train on images
    # scaled down (a step costs about (size/32)^2 of a full one); the epochs left, and
    # validation, at full size. []: full size throughout.
    progressive_resizing: list[ResizePhase]
    early_stopping: EarlyStoppingParams
    checkpoint: CheckpointParams
    # Validate only the last this many epochs, among which the checkpoint chooses the
    # returned model (the others log no validation figures); None: every epoch.
    validate_last_epochs: PositiveInt | None
    # Running the same command after an interruption continues from the last
    # completed epoch; false always starts at epoch 1.
    resume: bool
    # Keras fit verbosity: 1 progress bar, 2 one line per epoch, 0 silent.
    verbose: Literal["auto", 0, 1, 2]
    # Under TensorFlow, BatchNorm trains with its fused kernel (``fused.py``): the same
    # layers and saved model, fewer ops; other backends ignore it.
    fused_batchnorm: bool
    # One device or data-parallel over several (see DistributionParams).
    distribution: DistributionParams
    # The training's budget in minutes on the machine at hand: plan_training trains the
    # most epochs that fit it, at most `epochs`, and spans the schedule over them
    # (``planning``). None: `epochs` epochs.
    time_budget_minutes: PositiveFloat | None
    # Training steps the probe before training times (after one untimed warm-up step)
    # for the printed estimate and the budget; 0: no probe, no estimate.
    probe_steps: NonNegativeInt

    @model_validator(mode="after")
    def _ends_at_full_size(self) -> FitParams:
        shares = [phase.share for phase in self.progressive_resizing]
        if sum(shares) >= 1:
            raise ValueError(
                f"the shares of progressive_resizing add up to {sum(shares):g}: "
                "expected a total below 1 (the last epochs train at full size, the "
                "size the model is validated and used at)"
            )
        return self

    @model_validator(mode="after")
    def _validated_where_decided(self) -> FitParams:
        if self.validate_last_epochs is None:
            return self
        stopping = self.early_stopping
        if stopping.patience is not None and stopping.monitor.startswith("val_"):
            raise ValueError(
                f"validate_last_epochs is {self.validate_last_epochs} but "
                f"early_stopping watches {stopping.monitor} with patience "
                f"{stopping.patience}, which needs validation every epoch; expected "
                "validate_last_epochs null with early stopping on a validation "
                "figure, or early_stopping.patience null"
            )
        return self

    def validation_epochs(self, epochs: int | None = None) -> list[int]:
        """Return the epochs (1-based) of a run of ``epochs`` (by default
        ``self.epochs``) that are validated."""
        epochs = self.epochs if epochs is None else epochs
        first = (
            1
            if self.validate_last_epochs is None
            else epochs - self.validate_last_epochs + 1
        )
        return list(range(max(1, first), epochs + 1))

    @model_validator(mode="after")
    def _budget_needs_a_probe(self) -> FitParams:
        if self.time_budget_minutes is None:
            return self
        if self.probe_steps == 0:
            raise ValueError(
                f"time_budget_minutes is {self.time_budget_minutes} but probe_steps "
                "is 0: the epochs that fit the budget are measured by the probe; "
                "expected model_training.fit.probe_steps of at least 1 with a budget, "
                "or model_training.fit.time_budget_minutes null"
            )
        if self.distribution.mode != "none":
            raise ValueError(
                f"time_budget_minutes is {self.time_budget_minutes} with distribution "
                f"mode '{self.distribution.mode}': the probe measures one device, and "
                "each process would choose its own epochs; expected "
                "model_training.fit.time_budget_minutes null under data parallelism "
                "(set model_training.fit.epochs instead)"
            )
        return self


class ModelTrainingParams(Params):
    """The whole ``model_training`` group, for the checks across its parts."""

    # Every random choice of the pipeline (initialisation, data order, augmentation)
    # derives from it; the nodes take it as `params:model_training.seed`.
    seed: Seed
    model: ModelParams
    compile: CompileParams
    fit: FitParams
