"""The ``model_training`` pipeline: arrays -> compiled model -> trained model and history."""

from kedro.pipeline import Node, Pipeline

from .nodes import build_model, compile_model, describe_training, train_model


def create_pipeline(**kwargs) -> Pipeline:
    """Return the model_training pipeline."""
    return Pipeline(
        [
            Node(
                describe_training,
                inputs=[
                    "params:model_training.model",
                    "params:model_training.compile",
                    "params:model_training.fit",
                    "params:model_training.seed",
                    "x_train",
                    "y_train",
                    "x_val",
                    "y_val",
                ],
                outputs="training_config",
                name="describe_training",
            ),
            Node(
                build_model,
                inputs=[
                    "params:model_training.model",
                    "params:model_training.seed",
                    "x_train",
                ],
                outputs="initialised_model",
                name="build_model",
            ),
            Node(
                compile_model,
                inputs=[
                    "initialised_model",
                    "params:model_training.compile",
                    "params:model_training.fit",
                    "y_train",
                ],
                outputs="compiled_model",
                name="compile_model",
            ),
            Node(
                train_model,
                inputs=[
                    "compiled_model",
                    "x_train",
                    "y_train",
                    "x_val",
                    "y_val",
                    "params:model_training.fit",
                    "params:model_training.seed",
                    "training_config",
                    # Filled by the tracking hook; empty when tracking is off.
                    "training_callbacks",
                ],
                outputs=["trained_model", "training_history"],
                name="train_model",
            ),
        ],
        tags=["model_training"],
    )
