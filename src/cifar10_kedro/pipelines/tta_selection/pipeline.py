"""The ``tta_selection`` pipeline: each candidate test-time augmentation scored on the
validation split, once, and the result kept (``08_reporting/tta_selection.json``).

Run on demand (it is not part of ``__default__``, whose reports predict the test set
with ``reporting.tta`` alone): ``kedro run --pipeline tta_selection``.
"""

from kedro.pipeline import Node, Pipeline

from .nodes import select_tta


def create_pipeline(**kwargs) -> Pipeline:
    """Return the tta_selection pipeline; it reads trained_model and the validation
    arrays."""
    return Pipeline(
        [
            Node(
                select_tta,
                inputs=[
                    "trained_model",
                    "x_val",
                    "y_val",
                    "params:tta_selection",
                    "params:reporting",
                ],
                outputs="tta_selection",
                name="select_tta",
            )
        ],
        tags=["tta_selection"],
    )
