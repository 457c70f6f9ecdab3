"""The ``export`` pipeline: ONNX, a TensorFlow SavedModel (where TensorFlow is
installed) and a model card from ``trained_model``, each export checked on the test set.

Run on demand (it is not part of ``__default__``): ``kedro run --pipeline export``.
"""

from importlib.util import find_spec

from kedro.pipeline import Node, Pipeline

from .nodes import (
    evaluate_exports,
    export_formats,
    export_onnx,
    make_inference_model,
    make_model_card,
    quantize_int8,
)


def _with_saved_model() -> bool:
    return find_spec("tensorflow") is not None


def create_pipeline(**kwargs) -> Pipeline:
    """Return the export pipeline; without TensorFlow it writes no SavedModel."""
    saved = _with_saved_model()
    return Pipeline(
        [
            Node(
                make_inference_model,
                inputs="trained_model",
                outputs="inference_model",
                name="make_inference_model",
            ),
            Node(
                export_formats if saved else export_onnx,
                inputs="inference_model",
                outputs=["onnx_model", "saved_model"] if saved else "onnx_model",
                name="export_formats",
            ),
            Node(
                quantize_int8,
                inputs=[
                    "onnx_model",
                    "x_val",
                    "trained_model_version",
                    "params:export",
                ],
                outputs="onnx_int8_model",
                name="quantize_int8",
            ),
            Node(
                evaluate_exports,
                inputs={
                    "trained_model": "trained_model",
                    "inference_model": "inference_model",
                    "onnx_model": "onnx_model",
                    "onnx_int8_model": "onnx_int8_model",
                    "x_test": "x_test",
                    "y_test": "y_test",
                    "params": "params:export",
                    **({"saved_model": "saved_model"} if saved else {}),
                },
                outputs="export_metrics",
                name="evaluate_exports",
            ),
            Node(
                make_model_card,
                inputs=[
                    "trained_model",
                    "class_names",
                    "trained_model_version",
                    "training_config",
                    "params:inference",
                    "export_metrics",
                    "onnx_model",
                    "onnx_int8_model",
                    "training_plan",
                ],
                outputs="model_card",
                name="make_model_card",
            ),
        ],
        tags=["export"],
    )
