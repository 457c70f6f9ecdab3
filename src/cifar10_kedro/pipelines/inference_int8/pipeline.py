"""The ``inference_int8`` pipeline: the inference pipeline with the int8 ONNX export
(``kedro run --pipeline export``) in place of ``trained_model``.

Run on demand: ``kedro run --pipeline inference_int8 --params inference.input_path=PATH``
(``--load-versions onnx_int8_model:VERSION`` for an earlier export). The same nodes and
outputs as ``inference``, onnxruntime predicting: several times faster on CPUs with
integer dot products (VNNI, AMX). Its predictions name the trained_model version that
the export records.
"""

from kedro.pipeline import Node, Pipeline

from cifar10_kedro.pipelines import inference
from cifar10_kedro.pipelines.names import INT8_MODEL, TRAINED_MODEL

from .nodes import exported_model_version


def create_pipeline(**kwargs) -> Pipeline:
    """Return the inference pipeline reading ``onnx_int8_model`` and its version."""
    return Pipeline(
        [
            Node(
                exported_model_version,
                INT8_MODEL,
                "onnx_int8_model_version",
                name="read_int8_model_version",
            ),
            Pipeline(
                inference.create_pipeline(),
                inputs={
                    TRAINED_MODEL: INT8_MODEL,
                    "trained_model_version": "onnx_int8_model_version",
                },
            ),
        ],
        tags=["inference_int8"],
    )
