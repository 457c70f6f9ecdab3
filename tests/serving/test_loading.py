"""Which int8 export `kedro serve --engine onnx_int8` serves: the newest, only if the
graph records the served model's version."""

from __future__ import annotations

import onnx
import pytest
from kedro.io import DataCatalog, DatasetError, MemoryDataset
from onnx import TensorProto, helper

from cifar10_kedro.pipelines.names import INT8_MODEL
from cifar10_kedro.prediction import ONNX_MODEL_VERSION
from cifar10_kedro.serving.loading import _int8_export

VERSION = "2026-12-03T10.00.00.000Z"


def graph(version: str | None) -> onnx.ModelProto:
    """A one-node graph, recording ``version`` as the export does (or nothing)."""
    image = helper.make_tensor_value_info("image", TensorProto.UINT8, [None, 32, 32, 3])
    out = helper.make_tensor_value_info("out", TensorProto.UINT8, [None, 32, 32, 3])
    model = helper.make_model(
        helper.make_graph(
            [helper.make_node("Identity", ["image"], ["out"])], "g", [image], [out]
        )
    )
    if version is not None:
        helper.set_model_props(model, {ONNX_MODEL_VERSION: version})
    return model


def catalog(model: onnx.ModelProto | None) -> DataCatalog:
    return DataCatalog(
        {INT8_MODEL: MemoryDataset(model, copy_mode="assign")} if model else {}
    )


def test_the_export_of_the_served_version_is_served():
    exported = graph(VERSION)
    assert _int8_export(catalog(exported), VERSION) is exported


def test_an_export_of_another_version_is_refused_with_the_command_to_run():
    with pytest.raises(DatasetError) as error:
        _int8_export(catalog(graph("2026-12-01T09.00.00.000Z")), VERSION)
    message = str(error.value)
    assert "the newest export is of version 2026-12-01T09.00.00.000Z" in message
    assert (
        f"kedro run --pipeline export --load-versions trained_model:{VERSION}"
        in message
    )


def test_no_export_and_a_graph_without_its_version_are_clear_errors():
    with pytest.raises(DatasetError, match="nothing was exported yet"):
        _int8_export(catalog(None), VERSION)
    with pytest.raises(ValueError, match="export it again"):
        _int8_export(catalog(graph(None)), VERSION)
