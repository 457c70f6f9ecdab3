"""The registered pipelines: the trainings bound to their MLflow model stay usable
however Kedro slices them (kedro run --from-nodes, the resume command it suggests)."""

from __future__ import annotations

import pytest
from kedro.framework.startup import bootstrap_project
from kedro.pipeline import Pipeline

from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def pipelines() -> dict[str, Pipeline]:
    bootstrap_project(PROJECT_ROOT)
    from cifar10_kedro.pipeline_registry import register_pipelines  # noqa: PLC0415

    return register_pipelines()


@pytest.mark.parametrize("name", ["__default__", "compare"])
def test_slices_of_a_bound_training_never_raise(pipelines, name):
    bound = pipelines[name]
    # What a run filters, then what Kedro's resume suggestion slices again: a
    # slice that cannot carry the MLflow model is a plain pipeline, not an error.
    run = bound.filter(from_nodes=["train_model"])
    assert type(run) is type(bound)
    tail = run.from_nodes("plot_training_curves")
    assert isinstance(tail, Pipeline)
    assert {node.name for node in tail.nodes} == {"plot_training_curves"}
    assert run.only_nodes("train_model").nodes[0].name == "train_model"


def test_the_default_run_has_three_pipelines(pipelines):
    parts = ("data_ingestion", "model_training", "reporting")
    expected = {node.name for part in parts for node in pipelines[part].nodes}
    assert {node.name for node in pipelines["__default__"].nodes} == expected
