"""The ``model_training`` pipeline: compiled model -> trained best model and history."""

from kedro.pipeline import Node, Pipeline

from .nodes import build_model, train_model


def create_pipeline(**kwargs) -> Pipeline:
    """Return the model_training pipeline."""
    return Pipeline(
        [
            Node(
                build_model,
                inputs=["params:model_training", "x_train", "y_train"],
                outputs="compiled_model",
                name="build_model",
            ),
            Node(
                train_model,
                inputs=[
                    "compiled_model",
                    "x_train",
                    "y_train",
                    "x_val",
                    "y_val",
                    "params:model_training",
                ],
                outputs=["trained_model", "training_history"],
                name="train_model",
            ),
        ],
        tags=["model_training"],
    )
