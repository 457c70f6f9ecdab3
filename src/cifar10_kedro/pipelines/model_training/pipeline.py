"""The ``model_training`` pipeline: arrays -> compiled model -> trained model and history.

``plan_training`` measures the training's speed on this machine before the model is
compiled and decides the epochs (``planning``); the nodes after it read its planned
``fit`` and ``compile`` groups rather than the parameters.
"""

from kedro.pipeline import Node, Pipeline

from cifar10_kedro.pipelines.names import (
    FIT_PARAMS,
    PLANNED_COMPILE,
    PLANNED_FIT,
    TRAINED_MODEL,
    TRAINING_CONFIG,
    TRAINING_HISTORY,
    TRAINING_PLAN,
    TRAINS_MODEL,
)

from .nodes import build_model, compile_model, describe_training, train_model
from .planning import plan_training


def create_pipeline(**kwargs) -> Pipeline:
    """Return the model_training pipeline."""
    return Pipeline(
        [
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
                plan_training,
                inputs=[
                    "initialised_model",
                    "x_train",
                    "y_train",
                    "x_val",
                    FIT_PARAMS,
                    "params:model_training.compile",
                    "params:model_training.seed",
                ],
                outputs=[TRAINING_PLAN, PLANNED_FIT, PLANNED_COMPILE],
                name="plan_training",
            ),
            Node(
                describe_training,
                inputs=[
                    "params:model_training.model",
                    PLANNED_COMPILE,
                    PLANNED_FIT,
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
                compile_model,
                inputs=[
                    "initialised_model",
                    PLANNED_COMPILE,
                    PLANNED_FIT,
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
                    PLANNED_FIT,
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
