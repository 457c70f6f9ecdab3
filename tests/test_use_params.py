"""The inference, export and serving parameters: conf/base passes, mistakes are named
by the preflight check (params_schema) and by Kedro's typed-node validation."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from cifar10_kedro.params_schema import InvalidParametersError, validate_parameters
from tests.pipelines.test_pipelines import make_project_copy


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> dict[str, Any]:
    """conf/base's parameters as the config loader reads them (plain dicts)."""
    project = make_project_copy(tmp_path_factory.mktemp("params"))
    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        return session.load_context().config_loader["parameters"]


def changed(params: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    params = copy.deepcopy(params)
    *parents, last = key.split(".")
    group = params
    for part in parents:
        group = group[part]
    group[last] = value
    return params


def test_conf_base_has_every_group(raw):
    checked = validate_parameters(raw)
    assert checked.inference.resize == "crop"
    assert checked.inference.input_path is None
    assert checked.export.min_argmax_agreement == 0.999
    assert checked.serving.max_request_bytes == 10 * 2**20
    assert checked.serving.max_images == 64


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "inference.resize",
            "zoom",
            "inference.resize: Input should be 'crop', 'pad' or 'stretch'; got 'zoom'",
        ),
        (
            "inference.on_error",
            "ignore",
            "inference.on_error: Input should be 'skip' or 'fail'; got 'ignore'",
        ),
        (
            "inference.top_k",
            0,
            "inference.top_k: Input should be greater than or equal to 1",
        ),
        (
            "inference.contact_sheet.low_confidence",
            1.5,
            "inference.contact_sheet.low_confidence: Input should be less than or equal to 1",
        ),
        (
            "inference.resise",
            "crop",
            "inference.resise: unknown parameter (a typo?); expected one of ['batch_size'",
        ),
        (
            "export.min_argmax_agreement",
            1.5,
            "export.min_argmax_agreement: Input should be less than or equal to 1",
        ),
        ("serving.max_images", 0, "serving.max_images: Input should be greater than 0"),
        (
            "serving.max_request_bytes",
            "10MB",
            "serving.max_request_bytes: Input should be a valid integer",
        ),
    ],
)
def test_each_mistake_is_named(raw, key, value, message):
    with pytest.raises(InvalidParametersError) as raised:
        validate_parameters(changed(raw, key, value))
    assert message in str(raised.value)


def test_kedro_validates_the_typed_node_inputs_before_a_run(tmp_path):
    project = make_project_copy(tmp_path)
    bootstrap_project(project)
    with KedroSession.create(
        project_path=project, runtime_params={"inference": {"resize": "zoom"}}
    ) as session:
        with pytest.raises(Exception, match=r"inference") as raised:
            session.run(pipeline_names=["inference"])
    assert "resize" in str(raised.value)
