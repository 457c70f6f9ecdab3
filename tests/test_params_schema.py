"""The parameter schema: every environment passes, every mistake is named."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from cifar10_kedro.params_schema import (
    ARCHITECTURE_OPTIONS,
    OPTIMIZER_OPTIONS,
    InvalidParametersError,
    validate_parameters,
)
from cifar10_kedro.pipelines.model_training.architectures import ARCHITECTURES
from cifar10_kedro.pipelines.model_training.nodes import OPTIMIZERS
from tests.conftest import PROJECT_ROOT
from tests.pipelines.test_pipelines import make_project_copy

ENVIRONMENTS = sorted(
    p.name
    for p in (PROJECT_ROOT / "conf").iterdir()
    if p.is_dir() and p.name not in {"base", "local"}
)


def environment_params(tmp_path, env: str | None) -> dict[str, Any]:
    project = make_project_copy(tmp_path)
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        return session.load_context().params


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict[str, Any]:
    return environment_params(tmp_path_factory.mktemp("base"), None)


@pytest.mark.parametrize("env", [None, *ENVIRONMENTS])
def test_every_environment_matches_the_schema(tmp_path, env) -> None:
    validate_parameters(environment_params(tmp_path, env))


def test_schema_option_models_name_real_architectures_and_optimizers() -> None:
    # A new architecture may come without an options model (its options then pass
    # unchecked), but no options model may outlive its architecture or optimizer.
    assert set(ARCHITECTURE_OPTIONS) <= set(ARCHITECTURES)
    assert set(OPTIMIZER_OPTIONS) <= set(OPTIMIZERS)


def with_change(params: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``params`` with the dotted ``key`` set (or removed for ...)."""
    changed = copy.deepcopy(params)
    *parents, last = key.split(".")
    group = changed
    for part in parents:
        group = group[part]
    if value is ...:
        del group[last]
    else:
        group[last] = value
    return changed


CASES = {
    "unknown-architecture": (
        "model_training.architecture",
        "resnet",
        "model_training.architecture: Input should be 'fast_cnn' or 'notebook_cnn'; "
        "got 'resnet'",
    ),
    "unknown-optimizer": (
        "model_training.optimizer.name",
        "rmsprop",
        "model_training.optimizer.name: Input should be 'adam', 'adamw' or 'sgd'; "
        "got 'rmsprop'",
    ),
    "epochs-zero": (
        "model_training.epochs",
        0,
        "model_training.epochs: Input should be greater than 0; got 0",
    ),
    "epochs-not-integer": (
        "model_training.epochs",
        2.5,
        "model_training.epochs: Input should be a valid integer; got 2.5",
    ),
    "epochs-text": (
        "model_training.epochs",
        "ten",
        "model_training.epochs: Input should be a valid integer; got 'ten'",
    ),
    "epochs-bool": (
        "model_training.epochs",
        True,
        "model_training.epochs: Input should be a valid integer; got True",
    ),
    "batch-size-negative": (
        "model_training.batch_size",
        -32,
        "model_training.batch_size: Input should be greater than 0; got -32",
    ),
    "validation-fraction-zero": (
        "data_ingestion.validation_fraction",
        0,
        "data_ingestion.validation_fraction: Input should be greater than 0; got 0",
    ),
    "validation-fraction-one": (
        "data_ingestion.validation_fraction",
        1,
        "data_ingestion.validation_fraction: Input should be less than 1; got 1",
    ),
    "learning-rate-zero": (
        "model_training.optimizer.learning_rate",
        0.0,
        "model_training.optimizer.learning_rate: Input should be greater than 0; "
        "got 0.0",
    ),
    "typo-top-level-key": (
        "model_training.epoch",
        5,
        "model_training.epoch: unknown parameter (a typo?); expected one of "
        "['architecture', 'architectures', 'augmentation', 'batch_size', ",
    ),
    "typo-nested-key": (
        "model_training.optimizer.sgd.momentun",
        0.9,
        "model_training.optimizer.sgd.momentun: unknown parameter (a typo?); "
        "expected one of ['clipnorm', ",
    ),
    "typo-group": (
        "reportng",
        {"batch_size": 10},
        "reportng: unknown parameter (a typo?); expected one of "
        "['data_ingestion', 'export', 'inference', 'model_training', 'reporting', "
        "'serving']",
    ),
    "missing-key": (
        "model_training.loss",
        ...,
        "model_training.loss: missing; this parameter is required",
    ),
    "unknown-monitor": (
        "model_training.early_stopping.monitor",
        "val_acc",
        "model_training.early_stopping: monitor is 'val_acc'; expected one of "
        "['accuracy', 'loss', 'val_accuracy', 'val_loss']",
    ),
    "unknown-metric": (
        "model_training.metrics",
        ["acc"],
        "model_training.metrics: unknown Keras metric(s) ['acc']",
    ),
    "checkpoint-not-keras": (
        "model_training.checkpoint.filepath",
        "best.h5",
        "model_training.checkpoint.filepath: String should match pattern",
    ),
    "resume-not-bool": (
        "model_training.resume",
        "yes",
        "model_training.resume: Input should be a valid boolean; got 'yes'",
    ),
    "subset-size-zero": (
        "data_ingestion.train_per_class",
        0,
        "data_ingestion.train_per_class: Input should be greater than 0; got 0",
    ),
    "architecture-option": (
        "model_training.architectures.fast_cnn.dropout",
        1.0,
        "model_training.architectures.fast_cnn.dropout: Input should be less than 1",
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_each_mistake_is_named_with_what_was_expected(base, case) -> None:
    key, value, expected = CASES[case]
    with pytest.raises(InvalidParametersError) as info:
        validate_parameters(with_change(base, key, value))
    message = str(info.value)
    assert message.startswith("1 invalid parameter(s); fix them in conf/")
    assert expected in message


def test_every_mistake_is_reported_at_once(base) -> None:
    # One mistake per key (the last case of each key), all in the same parameters;
    # the monitor check needs valid metrics, so the metrics case is left out.
    cases = {key: (value, text) for key, value, text in CASES.values()}
    del cases["model_training.metrics"]
    params = base
    for key, (value, _) in cases.items():
        params = with_change(params, key, value)
    with pytest.raises(InvalidParametersError) as info:
        validate_parameters(params)
    message = str(info.value)
    assert message.startswith(f"{len(cases)} invalid parameter(s)")
    for key, (_, expected) in cases.items():
        assert expected in message, key


def test_null_subsets_and_augmentation_are_allowed(base) -> None:
    params = with_change(base, "data_ingestion.test_per_class", None)
    params = with_change(params, "model_training.augmentation", None)
    validate_parameters(params)
