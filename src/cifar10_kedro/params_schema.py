"""The schema of every parameter, checked once before a run starts.

``validate_parameters`` checks the merged parameters (``conf/base``, the environment
and ``--params``) against the pydantic models below and raises one
``InvalidParametersError`` that lists every problem with its dotted key, so that a
typo or a bad value fails before any node runs and before anything is written. Every
group forbids unknown keys, so a misspelt key is an error rather than silently ignored.

The nodes keep receiving plain dictionaries; the schema only checks them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
)

from cifar10_kedro.pipelines.export.params import ExportParams
from cifar10_kedro.pipelines.inference.params import InferenceParams
from cifar10_kedro.pipelines.model_training.architectures import ARCHITECTURES
from cifar10_kedro.pipelines.model_training.nodes import LOSSES, OPTIMIZERS
from cifar10_kedro.serving.params import ServingParams

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
UnitFloat = Annotated[float, Field(ge=0, le=1)]


class InvalidParametersError(ValueError):
    """Raised once, before a run, with every parameter problem found."""


class _Group(BaseModel):
    # strict: no silent coercion ("5" or true are not an epoch count); ints are floats.
    model_config = ConfigDict(extra="forbid", strict=True)


# ------------------------------------------------------------------- data_ingestion


class DataIngestionParams(_Group):
    seed: NonNegativeInt
    validation_fraction: Annotated[float, Field(gt=0, lt=1)]
    train_per_class: PositiveInt | None = None
    test_per_class: PositiveInt | None = None
    sample_grid_per_class: PositiveInt = 5


# ------------------------------------------------------------------- model_training


class FastCNNOptions(_Group):
    stem: Literal["conv", "whitening"] | None = None
    whitening_images: PositiveInt | None = None
    stem_width: PositiveInt | None = None
    widths: Annotated[list[PositiveInt], Field(min_length=1)] | None = None
    dropout: Annotated[float, Field(ge=0, lt=1)] | None = None


class NoOptions(_Group):
    """An architecture without options: any key is a mistake."""


# Options of each architecture. One registered in architectures.ARCHITECTURES without
# an entry here still validates its name; its options are passed through unchecked.
ARCHITECTURE_OPTIONS: dict[str, type[BaseModel]] = {
    "fast_cnn": FastCNNOptions,
    "notebook_cnn": NoOptions,
}

ArchitecturesParams = create_model(
    "ArchitecturesParams",
    __base__=_Group,
    **{
        name: (ARCHITECTURE_OPTIONS.get(name, dict[str, Any]) | None, None)
        for name in sorted(ARCHITECTURES)
    },
)


class _OptimizerOptions(_Group):
    """Keyword arguments shared by the Keras optimizers."""

    weight_decay: NonNegativeFloat | None = None
    clipnorm: PositiveFloat | None = None
    clipvalue: PositiveFloat | None = None
    global_clipnorm: PositiveFloat | None = None
    use_ema: bool | None = None
    ema_momentum: UnitFloat | None = None
    gradient_accumulation_steps: PositiveInt | None = None


class SGDOptions(_OptimizerOptions):
    momentum: UnitFloat | None = None
    nesterov: bool | None = None


class AdamOptions(_OptimizerOptions):
    beta_1: UnitFloat | None = None
    beta_2: UnitFloat | None = None
    epsilon: PositiveFloat | None = None
    amsgrad: bool | None = None


OPTIMIZER_OPTIONS: dict[str, type[BaseModel]] = {
    "sgd": SGDOptions,
    "adam": AdamOptions,
    "adamw": AdamOptions,
}

OptimizerParams = create_model(
    "OptimizerParams",
    __base__=_Group,
    name=(Literal[tuple(sorted(OPTIMIZERS))], ...),
    learning_rate=(PositiveFloat, ...),
    **{
        name: (OPTIMIZER_OPTIONS.get(name, dict[str, Any]) | None, None)
        for name in sorted(OPTIMIZERS)
    },
)


class LRScheduleParams(_Group):
    name: Literal["constant", "warmup_cosine"]
    warmup_epochs: NonNegativeFloat = 1.0
    initial_fraction: UnitFloat = 0.1
    final_fraction: UnitFloat = 0.0


class AugmentationParams(_Group):
    rotation_degrees: Annotated[float, Field(ge=0, le=180)] = 0.0
    width_shift: UnitFloat = 0.0
    height_shift: UnitFloat = 0.0
    horizontal_flip: bool = False
    vertical_flip: bool = False
    fill_mode: Literal["reflect", "wrap", "constant", "nearest"] = "nearest"
    interpolation: Literal["nearest", "bilinear"] = "bilinear"


class EarlyStoppingParams(_Group):
    monitor: str
    patience: NonNegativeInt


class CheckpointParams(_Group):
    # The best model so far; a Keras .keras file.
    filepath: Annotated[str, Field(pattern=r"\.keras$")]
    monitor: str
    # Where an interrupted run keeps what it needs to resume.
    state_dir: Annotated[str, Field(min_length=1)]


class ModelTrainingParams(_Group):
    seed: NonNegativeInt
    architecture: Literal[tuple(sorted(ARCHITECTURES))]
    architectures: ArchitecturesParams | None = None
    precision: Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"] = "auto"
    optimizer: OptimizerParams
    lr_schedule: LRScheduleParams | None = None
    loss: Literal[LOSSES]
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0
    metrics: Annotated[list[str], Field(min_length=1)]
    augmentation: AugmentationParams | None = None
    batch_size: PositiveInt
    epochs: PositiveInt
    early_stopping: EarlyStoppingParams
    checkpoint: CheckpointParams
    resume: bool = True
    verbose: Literal["auto", 0, 1, 2] = "auto"

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, metrics: list[str]) -> list[str]:
        import keras  # noqa: PLC0415 - already imported by the nodes; kept local

        unknown = []
        for name in metrics:
            try:
                keras.metrics.get(name)
            except ValueError:
                unknown.append(name)
        if unknown:
            raise ValueError(
                f"unknown Keras metric(s) {unknown}; expected names such as "
                "'accuracy' or 'sparse_categorical_accuracy'"
            )
        return metrics

    @field_validator("early_stopping", "checkpoint")
    @classmethod
    def _monitor_is_logged(cls, value: Any, info: ValidationInfo) -> Any:
        metrics = info.data.get("metrics")
        if metrics is None:  # already reported
            return value
        logged = sorted({"loss", *metrics} | {f"val_{m}" for m in {"loss", *metrics}})
        if value.monitor not in logged:
            raise ValueError(
                f"monitor is '{value.monitor}'; expected one of {logged} "
                "(the loss and metrics that training logs)"
            )
        return value


# ------------------------------------------------------------------------ reporting


class ReportingParams(_Group):
    batch_size: PositiveInt
    tta_flip: bool = False
    tta_translate: NonNegativeInt = 0
    mistakes_to_show: PositiveInt = 20


class Parameters(_Group):
    data_ingestion: DataIngestionParams
    model_training: ModelTrainingParams
    reporting: ReportingParams
    # Models in their own modules; absent groups are checked when their pipeline runs.
    inference: InferenceParams | None = None
    export: ExportParams | None = None
    serving: ServingParams | None = None


# --------------------------------------------------------------------------- errors


def _allowed_keys(loc: tuple[Any, ...]) -> list[str] | None:
    """Return the keys allowed at the parent of ``loc`` in the schema, if known."""
    model: Any = Parameters
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        candidates = [field.annotation, *getattr(field.annotation, "__args__", ())]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)),
            None,
        )
        if model is None:
            return None
    return sorted(model.model_fields)


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "parameters"
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(error["loc"])
        expected = f"; expected one of {allowed}" if allowed else ""
        return f"{key}: unknown parameter (a typo?){expected}"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{key}: missing; this parameter is required"
    if error["type"] == "value_error":  # our own checks say what they got
        return f"{key}: {message}"
    shown = repr(error["input"])
    if len(shown) > 80:  # noqa: PLR2004
        shown = shown[:77] + "..."
    return f"{key}: {message}; got {shown}"


def validate_parameters(parameters: dict[str, Any]) -> Parameters:
    """Return the checked parameters or raise one error listing every problem."""
    try:
        return Parameters.model_validate(parameters)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        raise InvalidParametersError(
            f"{len(problems)} invalid parameter(s); fix them in "
            "conf/<env>/parameters_*.yml or --params (nothing was run or written):\n"
            + "\n".join(f"  - {p}" for p in problems)
        ) from None
