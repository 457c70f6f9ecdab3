"""A variant of the compare pipeline is one entry in conf/base/globals.yml: its
parameters, nodes, outputs and schema follow from it."""

from __future__ import annotations

import pytest
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from cifar10_kedro.params_base import InvalidParametersError
from cifar10_kedro.params_schema import validate_parameters
from cifar10_kedro.variants import merged, variant_names, with_variants
from tests.conftest import PROJECT_ROOT, project_parameters
from tests.pipelines.test_pipelines import make_project_copy

# The one edit: the recipe without lookahead, declared under `variants:`.
NO_LOOKAHEAD = """\
  no_lookahead:
    model_training:
      compile:
        optimizer:
          lookahead: null
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A copy of the project whose conf/base/globals.yml declares one more variant."""
    project = make_project_copy(tmp_path)
    path = project / "conf" / "base" / "globals.yml"
    text = path.read_text()
    assert text.count("\nvariants:\n") == 1
    path.write_text(text.replace("\nvariants:\n", "\nvariants:\n" + NO_LOOKAHEAD))
    monkeypatch.chdir(project)  # where `kedro` (and variant_names) find the project
    bootstrap_project(project)
    yield project
    bootstrap_project(
        PROJECT_ROOT
    )  # the next use registers the project's own pipelines


def test_a_variant_is_one_edit(project) -> None:
    assert variant_names() == ("no_lookahead", "notebook")
    # Its nodes, namespaced, and its results in the comparison.
    compare = pipelines["compare"]
    names = {node.name for node in compare.nodes}
    assert {"no_lookahead.train_model", "no_lookahead.predict_test"} <= names
    (node,) = [n for n in compare.nodes if n.name == "compare_variants"]
    assert {"no_lookahead.test_metrics", "no_lookahead.training_history"} <= set(
        node.inputs
    )
    # Its parameters, checked by Kedro: the run's own groups (smoke's here) with the
    # variant's change.
    with KedroSession.create(project_path=project, env="smoke") as session:
        context = session.load_context()
        params = context.params
        model_path = context.catalog.get("no_lookahead.trained_model")._describe()  # noqa: SLF001
    variant, default = params["no_lookahead"], params
    assert variant["model_training"]["compile"].optimizer.lookahead is None
    assert default["model_training"]["compile"].optimizer.lookahead is not None
    assert variant["model_training"]["fit"] == default["model_training"]["fit"]
    assert variant["model_training"]["model"] == default["model_training"]["model"]
    assert variant["reporting"] == default["reporting"]
    # Its outputs, under its name; and the whole tree passes the preflight schema.
    assert "06_models/no_lookahead/model.keras" in str(model_path["filepath"])
    validate_parameters(params)


def test_reading_the_variants_leaves_a_sessions_configuration_alone(
    tmp_path, monkeypatch
) -> None:
    """Kedro may build the pipelines (and read the variants) while a session runs,
    after it made its config loader: the session's catalog keeps its environment's
    globals (a loader made then would have taken over the process's resolver)."""
    project = make_project_copy(tmp_path)
    monkeypatch.chdir(project)
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="smoke") as session:
        context = session.load_context()
        assert variant_names() == ("notebook",)
        model = context.catalog.get("trained_model")._describe()  # noqa: SLF001
    assert str(model["filepath"]).startswith(str(project / "data" / "smoke"))


def test_the_notebook_environment_is_the_notebook_variant() -> None:
    """`--env notebook` and the compare pipeline's `notebook` variant read the same
    declaration: they differ only in where the environment writes."""
    alone = project_parameters("notebook")
    variant = project_parameters()["notebook"]
    state_dir = alone["model_training"]["fit"]["checkpoint"]["state_dir"]
    assert state_dir == "data/notebook/06_models/checkpoints"
    assert alone["model_training"] == merged(
        variant["model_training"], {"fit": {"checkpoint": {"state_dir": state_dir}}}
    )
    assert alone["reporting"] == variant["reporting"]


def test_an_environment_changes_a_variant_under_its_name() -> None:
    """--params (as an environment's file) override the variant after its changes."""
    params = project_parameters(
        "smoke",
        {
            "notebook": {"model_training": {"fit": {"epochs": 3}}},
            "model_training": {"fit": {"batch_size": 16, "verbose": 0}},
        },
    )
    fit = params["notebook"]["model_training"]["fit"]
    # --params, the variant's own change (batch 32) over the run's, the run's own.
    assert (fit["epochs"], fit["batch_size"], fit["verbose"]) == (3, 32, 0)


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        (
            {"data": {"data_ingestion": {"seed": 1}}},
            "globals variants.data: expected the changes to some of "
            "['model_training', 'reporting'] (the groups the compare pipeline runs "
            "again); got ['data_ingestion']",
        ),
        (
            {"serving": {"reporting": {}}},
            "globals variants.serving: 'serving' is the name of a parameter group; "
            "expected another name",
        ),
        (
            {"with-dash": {}},
            "globals variants.with-dash: a variant's name names its parameters, nodes "
            "and outputs; expected a Python identifier",
        ),
    ],
    ids=["another-group", "a-group-name", "not-an-identifier"],
)
def test_a_wrong_variant_is_named(variants, message) -> None:
    params = project_parameters()
    with pytest.raises(InvalidParametersError) as info:
        with_variants(params, variants)
    assert str(info.value).startswith(message)
