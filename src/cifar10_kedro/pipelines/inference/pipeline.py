"""The ``inference`` pipeline: classify every image under ``inference.input_path``.

Run on demand (it is not part of ``__default__``):
``kedro run --pipeline inference --params inference.input_path=PATH``.
"""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    classify_images,
    plot_contact_sheet,
    prepare_images,
    summarize_inference,
)


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
