"""The ``inference`` pipeline: classify every image under ``inference.input_path``.

Run on demand (it is not part of ``__default__``):
``kedro run --pipeline inference --params inference.input_path=PATH``;
``--pipeline inference_int8`` is the same with the int8 ONNX export.
"""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    classify_images,
    classify_request,
    plot_contact_sheet,
    prepare_images,
    read_request,
    summarize_inference,
)

# The MLflow model's input and output (create_request_pipeline).
REQUEST = "model_request"
RESPONSE = "model_response"


def create_pipeline(**kwargs) -> Pipeline:
    """Return the inference pipeline; it reads trained_model and class_names."""
    return Pipeline(
        [
            Node(
                prepare_images,
                inputs=["inference_images", "params:inference"],
                outputs="inference_inputs",
                name="prepare_images",
            ),
            Node(
                classify_images,
                inputs=[
                    "trained_model",
                    "inference_inputs",
                    "class_names",
                    "trained_model_version",
                    "params:inference",
                ],
                outputs="inference_predictions",
                name="classify_images",
            ),
            Node(
                plot_contact_sheet,
                inputs=[
                    "inference_inputs",
                    "inference_predictions",
                    "params:inference",
                ],
                outputs="inference_contact_sheet",
                name="plot_contact_sheet",
            ),
            # Named to sort after plot_contact_sheet: the log ends with the counts.
            Node(
                summarize_inference,
                inputs=["inference_predictions", "params:inference"],
                outputs="inference_summary",
                name="summarize_inference",
            ),
        ],
        tags=["inference"],
    )


def create_request_pipeline() -> Pipeline:
    """Return the pipeline that a training run logs as its MLflow model: a table of
    base64 images (``model_request``) -> their predictions (``model_response``).

    Its other inputs (``trained_model``, ``class_names``, ``params:inference``) are
    stored with the model by kedro-mlflow's ``KedroPipelineModel``
    (``cifar10_kedro.tracking``), so that ``mlflow.pyfunc.load_model`` or
    ``mlflow models serve`` classify images outside Kedro.
    """
    return Pipeline(
        [
            Node(read_request, REQUEST, "model_request_images", name="read_request"),
            Node(
                prepare_images,
                ["model_request_images", "params:inference"],
                "model_request_inputs",
                name="prepare_request_images",
            ),
            Node(
                classify_request,
                [
                    "trained_model",
                    "model_request_inputs",
                    "class_names",
                    "params:inference",
                ],
                RESPONSE,
                name="classify_request",
            ),
        ]
    )
