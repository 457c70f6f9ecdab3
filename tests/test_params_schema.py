"""The parameters: every environment passes, every mistake is named with its key.

Two checks stand between a configuration and a run. Kedro validates each typed
``params:`` group of a node (the models in each pipeline's ``params.py``) when it builds
the catalog; the preflight hook validates the whole tree against
``cifar10_kedro.params_schema`` for what lies outside those groups. Both are exercised
here, on the parameters exactly as Kedro loads them. And one rule: every value is in
conf/base, none in code (``cifar10_kedro.params_base``).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import re
from pathlib import Path
from typing import Any, get_args

import pydantic
import pytest
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.validation.exceptions import ParameterValidationError
from kedro.validation.parameter_validator import ParameterValidator
from kedro.validation.type_extractor import TypeExtractor

import cifar10_kedro
from cifar10_kedro.params_base import InvalidParametersError, Params
from cifar10_kedro.params_schema import (
    Parameters,
    VariantParams,
    schema,
    validate_parameters,
)
from cifar10_kedro.pipelines.data_ingestion.params import DataIngestionParams
from cifar10_kedro.pipelines.export.params import ExportParams
from cifar10_kedro.pipelines.inference.params import InferenceParams
from cifar10_kedro.pipelines.model_training.architectures import ARCHITECTURES
from cifar10_kedro.pipelines.model_training.optimizers import OPTIMIZERS
from cifar10_kedro.pipelines.model_training.params import (
    METRICS_FOR_LOSS,
    Architecture,
    CompileParams,
    FitParams,
    LossName,
    Metric,
    ModelParams,
    ModelTrainingParams,
    Monitor,
    OptimizerName,
    OptimizerParams,
)
from cifar10_kedro.pipelines.model_training.training_state import HISTORY_COLUMNS
from cifar10_kedro.pipelines.reporting.params import ReportingParams, TTASelectionParams
from cifar10_kedro.serving.params import ServingParams
from cifar10_kedro.variants import GROUPS, variant_names
from tests.conftest import PROJECT_ROOT, base_params, project_parameters
from tests.pipelines.test_pipelines import make_project_copy, snapshot

ENVIRONMENTS = sorted(
    p.name
    for p in (PROJECT_ROOT / "conf").iterdir()
    if p.is_dir() and p.name not in {"base", "local"}
)
# The typed groups that the nodes declare, with the type each must become.
TYPED_GROUPS = {
    "data_ingestion": DataIngestionParams,
    "model_training.model": ModelParams,
    "model_training.compile": CompileParams,
    "model_training.fit": FitParams,
    "reporting": ReportingParams,
    "notebook.model_training.model": ModelParams,
    "notebook.model_training.compile": CompileParams,
    "notebook.model_training.fit": FitParams,
    "notebook.reporting": ReportingParams,
    "inference": InferenceParams,
    "export": ExportParams,
    "tta_selection": TTASelectionParams,
}


def test_every_environment_is_tested() -> None:
    assert set(ENVIRONMENTS) >= {"smoke", "notebook", "gpu"}


@pytest.fixture(scope="module")
def registered() -> dict[str, Any]:
    """The project's registered pipelines, as `kedro run` finds them."""
    bootstrap_project(PROJECT_ROOT)
    return dict(pipelines)


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return project_parameters()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the project's configuration, so that no session writes into it."""
    return make_project_copy(tmp_path_factory.mktemp("schema"))


def session_params(project, env, runtime_params=None) -> dict[str, Any]:
    """``context.params`` of a KedroSession: Kedro's own validation of typed groups."""
    bootstrap_project(project)
    with KedroSession.create(
        project_path=project, env=env, runtime_params=runtime_params
    ) as session:
        return session.load_context().params


def nested(params: dict[str, Any], key: str) -> Any:
    value = params
    for part in key.split("."):
        value = value[part]
    return value


def kedro_validate(registered, params: dict[str, Any]) -> dict[str, Any]:
    """Kedro's validation of the typed groups, as KedroContext.params runs it."""
    return ParameterValidator(registered).validate_raw_params(params)


# ------------------------------------------------------------ every environment


def test_the_typed_groups_are_the_ones_kedro_finds(registered) -> None:
    found = TypeExtractor(registered).extract_types_from_pipelines()
    assert found == TYPED_GROUPS


@pytest.mark.parametrize("env", [None, *ENVIRONMENTS])
def test_every_environment_matches_the_root_schema(env) -> None:
    params = project_parameters(env)
    checked = validate_parameters(params)
    assert isinstance(checked, Parameters)
    # Every group, each variant's included, is there and valid on its own.
    fields = type(checked).model_fields
    assert set(params) == set(fields) >= {"data_ingestion", "serving", "notebook"}
    for group, field in fields.items():
        assert isinstance(field.annotation.model_validate(params[group]), Params)


@pytest.mark.parametrize("env", [None, *ENVIRONMENTS])
def test_every_environment_passes_kedros_validation(project, env) -> None:
    params = session_params(project, env)
    for key, model in TYPED_GROUPS.items():
        assert isinstance(nested(params, key), model), key
    # And the same tree, typed groups included, passes the hook's schema.
    validate_parameters(params)


def test_environments_change_what_they_say(project) -> None:
    base, smoke, notebook = (
        session_params(project, env) for env in (None, "smoke", "notebook")
    )
    assert base["model_training"]["fit"].epochs == 10
    assert smoke["model_training"]["fit"].epochs == 2
    assert smoke["data_ingestion"].train_per_class == 60
    assert smoke["notebook"]["model_training"]["fit"].epochs == 1
    assert notebook["model_training"]["model"].architecture == "notebook_cnn"
    # The compare pipeline's variant: the notebook's configuration on smoke's scale.
    variant = smoke["notebook"]["model_training"]
    assert variant["model"].architecture == "notebook_cnn"
    assert variant["compile"].optimizer.name == "adam"
    assert variant["fit"].batch_size == 32
    assert variant["fit"].checkpoint.state_dir == "data/smoke/06_models/checkpoints"
    assert notebook["model_training"]["fit"].batch_size == 32
    assert notebook["reporting"].tta.flip is False
    assert base["reporting"].tta.flip is True


def test_the_notebook_configuration_smooths_no_labels(base) -> None:
    """The notebook's sparse loss cannot smooth labels: its overlay sets 0, both as
    `--env notebook` and as the compare pipeline's `notebook` variant."""
    assert base["model_training"]["compile"]["label_smoothing"] > 0  # the overlay's job
    for compile_ in (
        project_parameters("notebook")["model_training"]["compile"],
        base["notebook"]["model_training"]["compile"],
    ):
        assert compile_["loss"] == "sparse_categorical_crossentropy"
        assert compile_["label_smoothing"] == 0
        assert compile_["metrics"] == ["sparse_categorical_accuracy"]


def test_the_notebook_overlay_is_what_makes_it_valid() -> None:
    smoothed = project_parameters(
        "notebook", {"model_training": {"compile": {"label_smoothing": 0.1}}}
    )
    with pytest.raises(InvalidParametersError) as info:
        validate_parameters(smoothed)
    assert (
        "model_training.compile: label_smoothing is 0.1 but loss is "
        "'sparse_categorical_crossentropy', which cannot smooth labels"
    ) in str(info.value)


# ------------------------------------------------ one source for every value


def params_models() -> set[type[Params]]:
    """Every parameter model of the package: each ``params*.py`` module imported, the
    subclasses of ``Params`` walked (the root schema with its variants included)."""
    package = Path(cifar10_kedro.__file__).parent
    for path in sorted(package.rglob("params*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        importlib.import_module(".".join(parts))
    schema(variant_names())
    found: set[type[Params]] = set()
    todo = [Params]
    while todo:
        for model in todo.pop().__subclasses__():
            if model not in found:
                found.add(model)
                todo.append(model)
    return found


def test_no_parameter_has_a_value_in_code() -> None:
    """The models hold types, constraints and rules; every value is in conf/base."""
    models = params_models()
    assert {
        DataIngestionParams,
        ModelTrainingParams,
        OptimizerParams,
        ReportingParams,
        InferenceParams,
        ExportParams,
        ServingParams,
        VariantParams,
        Parameters,
    } <= models
    with_a_default = [
        f"{model.__module__}.{model.__qualname__}.{name}"
        for model in models
        for name, field in model.model_fields.items()
        if not field.is_required()
    ]
    assert with_a_default == []


def test_a_variant_holds_the_groups_the_compare_pipeline_runs_again() -> None:
    assert tuple(VariantParams.model_fields) == GROUPS


def test_no_node_holds_a_value_of_its_own(registered) -> None:
    """Nodes take their values from the parameters: a keyword default is at most None,
    for an input that may be absent (the callbacks that tracking adds)."""
    defaults = {
        f"{node.name}({name}={parameter.default!r})"
        for pipeline in registered.values()
        for node in pipeline.nodes
        for name, parameter in inspect.signature(node.func).parameters.items()
        if parameter.default not in (inspect.Parameter.empty, None)
    }
    assert defaults == set()


def without(path: Path, key: str) -> None:
    """Remove the line of ``key`` (which must be there once) from the YAML file."""
    text, found = re.subn(rf"^ *{key}:.*\n", "", path.read_text(), flags=re.MULTILINE)
    assert found == 1, key
    path.write_text(text)


def test_a_key_missing_from_conf_base_is_named(tmp_path) -> None:
    project = make_project_copy(tmp_path)
    conf = project / "conf" / "base"
    without(conf / "parameters_reporting.yml", "calibration_bins")
    without(conf / "parameters_model_training.yml", "dropout")
    with pytest.raises(InvalidParametersError) as info:
        validate_parameters(project_parameters(conf_source=project / "conf"))
    lines = str(info.value).splitlines()
    # The notebook variant is the default with changes: its groups miss them too.
    assert lines[0].startswith("4 invalid parameter(s); fix them in conf/")
    for key in (
        "reporting.calibration_bins",
        "notebook.reporting.calibration_bins",
        "model_training.model.fast_cnn.dropout",
        "notebook.model_training.model.fast_cnn.dropout",
    ):
        assert f"  - {key}: missing; this parameter is required" in lines, key
    # Kedro's own validation of the typed groups names them too.
    with pytest.raises(ParameterValidationError) as info:
        session_params(project, None)
    message = str(info.value)
    assert "- Parameter 'reporting': Failed to instantiate " in message
    assert "  - calibration_bins: missing; this parameter is required" in message
    assert "- Parameter 'model_training.model': Failed to instantiate " in message
    assert "  - fast_cnn.dropout: missing; this parameter is required" in message


# ----------------------------------------------- the Literals and the registries


def test_architecture_literal_names_the_built_architectures() -> None:
    assert set(get_args(Architecture)) == set(ARCHITECTURES)
    # assemble() reads the options of the architecture by its name.
    assert set(get_args(Architecture)) <= set(ModelParams.model_fields)


def test_optimizer_literal_names_the_built_optimizers() -> None:
    assert set(get_args(OptimizerName)) == set(OPTIMIZERS)
    # compile_model() reads the options of the optimizer by its name.
    assert set(get_args(OptimizerName)) <= set(OptimizerParams.model_fields)


def test_losses_metrics_and_monitors_are_consistent() -> None:
    assert set(METRICS_FOR_LOSS) == set(get_args(LossName))
    assert set().union(*METRICS_FOR_LOSS.values()) == set(get_args(Metric))
    # A monitor is a column of the training history.
    assert set(get_args(Monitor)) <= set(HISTORY_COLUMNS)


# ---------------------------------------------------- the models' strictness


def test_a_group_lists_each_problem_by_its_key() -> None:
    with pytest.raises(InvalidParametersError) as info:
        base_params("model_training.fit", {"batch_size": "64", "epochs": 0, "z": 1})
    assert str(info.value).splitlines() == [
        "  - batch_size: Input should be a valid integer; got '64'",
        "  - epochs: Input should be greater than 0; got 0",
        f"  - z: unknown parameter (a typo?); expected one of "
        f"{sorted(FitParams.model_fields)}",
    ]


def test_groups_are_frozen_and_ints_pass_as_floats() -> None:
    optimizer = base_params("model_training.compile.optimizer", {"learning_rate": 1})
    assert optimizer.learning_rate == 1.0
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        optimizer.learning_rate = 2.0  # type: ignore[misc]


# ----------------------------------------------------------------- each mistake


def with_changes(params: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` with each dotted key set (or removed for ...)."""
    changed = copy.deepcopy(params)
    for key, value in changes.items():
        *parents, last = key.split(".")
        group = changed
        for part in parents:
            group = group[part]
        if value is ...:
            del group[last]
        else:
            group[last] = value
    return changed


SPARSE = "sparse_categorical_crossentropy"
FIT = "model_training.fit"
COMPILE = "model_training.compile"
OPTIMIZER = "model_training.compile.optimizer"
# name: (changes to conf/base, the dotted key named, what is said of it).
CASES = {
    "unknown-architecture": (
        {"model_training.model.architecture": "resnet"},
        "model_training.model.architecture",
        "Input should be 'fast_cnn' or 'notebook_cnn'; got 'resnet'",
    ),
    "unknown-optimizer": (
        {f"{OPTIMIZER}.name": "rmsprop"},
        f"{OPTIMIZER}.name",
        "Input should be 'adam', 'adamw' or 'sgd'; got 'rmsprop'",
    ),
    "epochs-zero": (
        {f"{FIT}.epochs": 0},
        f"{FIT}.epochs",
        "Input should be greater than 0; got 0",
    ),
    "epochs-text": (
        {f"{FIT}.epochs": "5"},
        f"{FIT}.epochs",
        "Input should be a valid integer; got '5'",
    ),
    "epochs-not-integer": (
        {f"{FIT}.epochs": 2.5},
        f"{FIT}.epochs",
        "Input should be a valid integer; got 2.5",
    ),
    "epochs-bool": (
        {f"{FIT}.epochs": True},
        f"{FIT}.epochs",
        "Input should be a valid integer; got True",
    ),
    "batch-size-negative": (
        {f"{FIT}.batch_size": -32},
        f"{FIT}.batch_size",
        "Input should be greater than 0; got -32",
    ),
    "validation-fraction-zero": (
        {"data_ingestion.validation_fraction": 0},
        "data_ingestion.validation_fraction",
        "Input should be greater than 0; got 0",
    ),
    "validation-fraction-one": (
        {"data_ingestion.validation_fraction": 1.0},
        "data_ingestion.validation_fraction",
        "Input should be less than 1; got 1.0",
    ),
    "subset-size-zero": (
        {"data_ingestion.train_per_class": 0},
        "data_ingestion.train_per_class",
        "Input should be greater than 0; got 0",
    ),
    "learning-rate-zero": (
        {f"{OPTIMIZER}.learning_rate": 0.0},
        f"{OPTIMIZER}.learning_rate",
        "Input should be greater than 0; got 0.0",
    ),
    "typo-in-a-group": (
        {f"{FIT}.epocs": 5},
        f"{FIT}.epocs",
        # Every key of the group, in order: the model's fields.
        f"unknown parameter (a typo?); expected one of {sorted(FitParams.model_fields)}",
    ),
    "typo-nested-key": (
        {f"{OPTIMIZER}.sgd.momentun": 0.9},
        f"{OPTIMIZER}.sgd.momentun",
        "unknown parameter (a typo?); expected one of ['momentum', 'nesterov']",
    ),
    "typo-at-group-level": (
        {"model_training.epocs": 5},
        "model_training.epocs",
        "unknown parameter (a typo?); expected one of "
        "['compile', 'fit', 'model', 'seed']",
    ),
    "typo-at-top-level": (
        {"model_trainng": {"seed": 1}},
        "model_trainng",
        "unknown parameter (a typo?); expected one of "
        "['data_ingestion', 'export', 'inference', 'model_training', 'notebook', 'reporting', 'serving', 'tta_selection']",
    ),
    "missing-key": (
        {f"{COMPILE}.loss": ...},
        f"{COMPILE}.loss",
        "missing; this parameter is required",
    ),
    "unknown-monitor": (
        {f"{FIT}.early_stopping.monitor": "val_acc"},
        f"{FIT}.early_stopping.monitor",
        "Input should be 'loss', 'accuracy', 'val_loss' or 'val_accuracy'; "
        "got 'val_acc'",
    ),
    "unknown-metric": (
        {f"{COMPILE}.metrics": ["acc"]},
        f"{COMPILE}.metrics.0",
        "Input should be 'accuracy', 'categorical_accuracy' or "
        "'sparse_categorical_accuracy'; got 'acc'",
    ),
    "empty-state-dir": (
        {f"{FIT}.checkpoint.state_dir": ""},
        f"{FIT}.checkpoint.state_dir",
        "String should have at least 1 character; got ''",
    ),
    "resume-not-bool": (
        {f"{FIT}.resume": "yes"},
        f"{FIT}.resume",
        "Input should be a valid boolean; got 'yes'",
    ),
    "resizing-below-the-network's-smallest-input": (
        {f"{FIT}.progressive_resizing": [{"size": 8, "share": 0.5}]},
        f"{FIT}.progressive_resizing.0.size",
        "Input should be greater than or equal to 12; got 8",
    ),
    "resizing-that-never-reaches-full-size": (
        {
            f"{FIT}.progressive_resizing": [
                {"size": 16, "share": 0.5},
                {"size": 24, "share": 0.5},
            ]
        },
        FIT,
        "the shares of progressive_resizing add up to 1: expected a total below 1 "
        "(the last epochs train at full size, the size the model is validated and "
        "used at)",
    ),
    "validation-at-the-end-with-early-stopping": (
        {
            f"{FIT}.validate_last_epochs": 2,
            f"{FIT}.early_stopping.patience": 3,
        },
        FIT,
        "validate_last_epochs is 2 but early_stopping watches val_accuracy with "
        "patience 3, which needs validation every epoch; expected "
        "validate_last_epochs null with early stopping on a validation figure, or "
        "early_stopping.patience null",
    ),
    "architecture-option": (
        {"model_training.model.fast_cnn.dropout": 1.0},
        "model_training.model.fast_cnn.dropout",
        "Input should be less than 1; got 1.0",
    ),
    "seed-negative": (
        {"model_training.seed": -1},
        "model_training.seed",
        "Input should be greater than or equal to 0; got -1",
    ),
    "tta-flip-not-bool": (
        {"reporting.tta.flip": "yes"},
        "reporting.tta.flip",
        "Input should be a valid boolean; got 'yes'",
    ),
    "calibration-bins-zero": (
        {"reporting.calibration_bins": 0},
        "reporting.calibration_bins",
        "Input should be greater than 0; got 0",
    ),
    "label-smoothing-with-the-sparse-loss": (
        {f"{COMPILE}.loss": SPARSE, f"{COMPILE}.metrics": ["accuracy"]},
        COMPILE,
        f"label_smoothing is 0.2 but loss is '{SPARSE}', which cannot smooth labels; "
        "expected label_smoothing 0 with that loss, or loss 'categorical_crossentropy'",
    ),
    "sparse-metric-with-the-categorical-loss": (
        {f"{COMPILE}.metrics": ["sparse_categorical_accuracy"]},
        COMPILE,
        "metrics ['sparse_categorical_accuracy'] do not fit loss "
        "'categorical_crossentropy' (its labels are one-hot); expected metrics among "
        "['accuracy', 'categorical_accuracy']",
    ),
    "categorical-metric-with-the-sparse-loss": (
        {
            f"{COMPILE}.loss": SPARSE,
            f"{COMPILE}.label_smoothing": 0.0,
            f"{COMPILE}.metrics": ["accuracy", "categorical_accuracy"],
        },
        COMPILE,
        f"metrics ['categorical_accuracy'] do not fit loss '{SPARSE}' (its labels are "
        "integers); expected metrics among ['accuracy', 'sparse_categorical_accuracy']",
    ),
    "batchnorm-bias-scale-with-adam": (
        {f"{OPTIMIZER}.name": "adam"},
        OPTIMIZER,
        "batchnorm_bias_lr_scale is 64.0 with the 'adam' optimizer, which normalises "
        "gradient scale away; expected 1.0 unless name is 'sgd'",
    ),
    "in-the-notebook-variant": (
        {"notebook.model_training.fit.epochs": 0},
        "notebook.model_training.fit.epochs",
        "Input should be greater than 0; got 0",
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_each_mistake_is_named_with_its_dotted_key(base, case) -> None:
    changes, key, expected = CASES[case]
    with pytest.raises(InvalidParametersError) as info:
        validate_parameters(with_changes(base, changes))
    message = str(info.value)
    assert message.startswith(
        "1 invalid parameter(s); fix them in conf/<env>/parameters_*.yml or --params "
        "(nothing was run or written):\n"
    )
    assert f"  - {key}: {expected}" in message.splitlines(), message


def typed_group(key: str) -> str | None:
    """The typed group that holds the dotted ``key``, if any."""
    found = [g for g in TYPED_GROUPS if key == g or key.startswith(g + ".")]
    return max(found, key=len) if found else None


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_kedro_names_each_mistake_in_a_typed_group(registered, base, case) -> None:
    """Kedro's own validation names the group, and the key within it; what lies
    outside every typed group passes it, and only the hook's schema finds it."""
    changes, key, expected = CASES[case]
    params = with_changes(base, changes)
    group = typed_group(key)
    if group is None:
        validated = kedro_validate(registered, params)
        assert isinstance(validated["reporting"], ReportingParams)
        return
    with pytest.raises(ParameterValidationError) as info:
        kedro_validate(registered, params)
    message = str(info.value)
    assert message.startswith("Parameter validation failed:\n")
    assert f"- Parameter '{group}': Failed to instantiate " in message
    inner = key.removeprefix(group).removeprefix(".") or "parameters"
    assert f"  - {inner}: {expected}" in message, message


def test_every_mistake_is_reported_at_once(base) -> None:
    # One mistake per key. The loss checks need valid metrics and loss, and a group
    # with a field error is not checked across its fields, so those are left out.
    independent = [
        case
        for case, (changes, key, _) in CASES.items()
        if key not in {COMPILE, OPTIMIZER, FIT} and f"{COMPILE}.metrics" not in changes
    ]
    cases = {CASES[c][1]: CASES[c] for c in independent}  # the last case of each key
    params = base
    for changes, _, _ in cases.values():
        params = with_changes(params, changes)
    with pytest.raises(InvalidParametersError) as info:
        validate_parameters(params)
    message = str(info.value)
    assert message.startswith(f"{len(cases)} invalid parameter(s)")
    lines = message.splitlines()
    assert len(lines) == len(cases) + 1
    for key, (_, _, expected) in cases.items():
        assert f"  - {key}: {expected}" in lines, key


def test_nulls_are_allowed_where_meant(base) -> None:
    params = with_changes(
        base,
        {
            "data_ingestion.test_per_class": None,
            f"{FIT}.early_stopping.patience": None,
            f"{OPTIMIZER}.lookahead": None,
            f"{OPTIMIZER}.weight_decay": None,
        },
    )
    validate_parameters(params)
    with pytest.raises(InvalidParametersError, match=r"model_training\.fit\.epochs"):
        validate_parameters(with_changes(base, {f"{FIT}.epochs": None}))


def test_parameters_that_are_not_a_mapping_are_refused() -> None:
    with pytest.raises(InvalidParametersError, match="^parameters: "):
        validate_parameters(["not", "a", "mapping"])  # type: ignore[arg-type]


# ------------------------------------------------- through a real KedroSession


@pytest.mark.parametrize(
    ("runtime_params", "expected"),
    [
        (
            {"model_training": {"fit": {"epochs": 0}}},
            [
                "Parameter 'model_training.fit'",
                "  - epochs: Input should be greater than 0; got 0",
            ],
        ),
        (
            {"model_training": {"model": {"architecture": "resnet"}}},
            [
                "Parameter 'model_training.model'",
                "  - architecture: Input should be 'fast_cnn' or 'notebook_cnn'; "
                "got 'resnet'",
            ],
        ),
        (
            {"reporting": {"tta": {"flipp": True}}},
            [
                "Parameter 'reporting'",
                "  - tta.flipp: unknown parameter (a typo?); expected one of "
                "['flip', 'shifts', 'translate']",
            ],
        ),
        (
            {"notebook": {"model_training": {"compile": {"label_smoothing": 0.1}}}},
            [
                "Parameter 'notebook.model_training.compile'",
                "label_smoothing is 0.1 but loss is 'sparse_categorical_crossentropy'",
            ],
        ),
    ],
    ids=["epochs", "architecture", "typo", "notebook-variant"],
)
def test_context_params_refuse_a_bad_runtime_value(
    project, runtime_params, expected
) -> None:
    with pytest.raises(ParameterValidationError) as info:
        session_params(project, "smoke", runtime_params)
    for text in expected:
        assert text in str(info.value)


def run_fails(project, monkeypatch, runtime_params, error) -> str:
    """``kedro run --env smoke --params ...`` in-process; return its error message
    after checking that it wrote nothing."""
    monkeypatch.chdir(project)
    # Nothing may be read: the run has to fail before its first node.
    monkeypatch.setenv("CIFAR10_RAW_PATH", str(project / "no-such-raw-data"))
    before = snapshot(project)
    bootstrap_project(project)
    with (
        pytest.raises(error) as info,
        KedroSession.create(
            project_path=project, env="smoke", runtime_params=runtime_params
        ) as session,
    ):
        session.run()
    assert snapshot(project) == before
    return str(info.value)


def test_a_run_with_a_bad_typed_value_fails_before_writing(project, monkeypatch):
    message = run_fails(
        project,
        monkeypatch,
        {"model_training": {"fit": {"epochs": "5"}}},
        ParameterValidationError,
    )
    assert "Parameter 'model_training.fit'" in message
    assert "  - epochs: Input should be a valid integer; got '5'" in message


def test_a_run_with_a_typo_outside_the_groups_fails_before_writing(
    project, monkeypatch
):
    message = run_fails(
        project,
        monkeypatch,
        {"model_training": {"epocs": 3}, "reportng": {"batch_size": 10}},
        InvalidParametersError,
    )
    # The notebook variant is conf/base's model_training with changes: it has the typo.
    assert message.startswith("3 invalid parameter(s); fix them in conf/")
    assert "  - model_training.epocs: unknown parameter (a typo?)" in message
    assert "  - notebook.model_training.epocs: unknown parameter (a typo?)" in message
    assert "  - reportng: unknown parameter (a typo?)" in message
