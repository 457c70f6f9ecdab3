"""The registered pipelines: plain pipelines that Kedro slices as it likes (kedro run
--from-nodes, the resume command it suggests), whose training nodes carry the tag that
the project's hooks key on."""

from __future__ import annotations

import pytest
from kedro.framework.startup import bootstrap_project
from kedro.pipeline import Pipeline

from cifar10_kedro.pipelines.names import TRAINED_MODEL, TRAINS_MODEL, namespaced
from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def pipelines() -> dict[str, Pipeline]:
    bootstrap_project(PROJECT_ROOT)
    from cifar10_kedro.pipeline_registry import register_pipelines  # noqa: PLC0415

    return register_pipelines()


@pytest.mark.parametrize("name", ["__default__", "compare"])
def test_slices_of_a_training_never_raise(pipelines, name):
    # What a run filters, then what Kedro's resume suggestion slices again.
    run = pipelines[name].filter(from_nodes=["train_model"])
    tail = run.from_nodes("plot_training_curves")
    assert isinstance(tail, Pipeline)
    assert {node.name for node in tail.nodes} == {"plot_training_curves"}
    assert run.only_nodes("train_model").nodes[0].name == "train_model"


def test_the_default_run_has_three_pipelines(pipelines):
    parts = ("data_ingestion", "model_training", "reporting")
    expected = {node.name for part in parts for node in pipelines[part].nodes}
    assert {node.name for node in pipelines["__default__"].nodes} == expected


def test_every_node_that_saves_a_trained_model_is_tagged_as_training(pipelines):
    """The checkpoint hook finds the training node by its tag: a renamed node keeps
    it; a node that trains without it would leave its checkpoint behind."""
    trainers = {}
    for pipeline in pipelines.values():
        for node in pipeline.nodes:
            if namespaced(node, TRAINED_MODEL) in node.outputs:
                trainers[node.name] = node
    assert {"train_model", "notebook.train_model"} <= set(trainers)
    assert all(TRAINS_MODEL in node.tags for node in trainers.values())
    tagged = {
        n.name for p in pipelines.values() for n in p.nodes if TRAINS_MODEL in n.tags
    }
    assert tagged == set(trainers)


def test_inference_int8_is_inference_with_the_int8_export(pipelines):
    """The same nodes and outputs as `inference`, reading the int8 export in place of
    the Keras model (and its version from the export itself)."""
    plain, int8 = pipelines["inference"], pipelines["inference_int8"]
    assert {n.name for n in int8.nodes} == {
        *(n.name for n in plain.nodes),
        "read_int8_model_version",
    }
    assert int8.all_outputs() >= plain.all_outputs()
    assert "trained_model" in plain.inputs() and "trained_model" not in int8.inputs()
    assert "onnx_int8_model" in int8.inputs()
    assert "trained_model_version" not in int8.inputs()
