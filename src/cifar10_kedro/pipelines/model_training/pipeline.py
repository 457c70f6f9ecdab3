"""The ``model_training`` pipeline: arrays -> compiled model -> trained model and history."""

from kedro.pipeline import Node, Pipeline

from cifar10_kedro.pipelines.names import (
    FIT_PARAMS,
    TRAINED_MODEL,
    TRAINING_CONFIG,
    TRAINING_HISTORY,
    TRAINS_MODEL,
)

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
                    FIT_PARAMS,
                    "params:model_training.seed",
                    "x_train",
                    "y_train",
                    "x_val",
                    "y_val",
                ],
                outputs=TRAINING_CONFIG,
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
                    FIT_PARAMS,
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
                    FIT_PARAMS,
                    "params:model_training.seed",
                    TRAINING_CONFIG,
                    # Keras callbacks: the tracking hook adds its epoch logger.
                    "training_callbacks",
                ],
                outputs=[TRAINED_MODEL, TRAINING_HISTORY],
                name="train_model",
                tags=[TRAINS_MODEL],
            ),
        ],
        tags=["model_training"],
    )
