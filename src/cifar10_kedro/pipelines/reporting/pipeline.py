"""The ``reporting`` pipeline: test metrics and plots from the saved model and history."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    evaluate_predictions,
    plot_confident_mistakes,
    plot_confusion_matrix,
    plot_training_curves,
    predict_test,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Return the reporting pipeline; it needs only saved artifacts."""
    return Pipeline(
        [
            Node(
                predict_test,
                inputs=["trained_model", "x_test", "params:reporting"],
                outputs="test_probabilities",
                name="predict_test",
            ),
            Node(
                evaluate_predictions,
                inputs=["test_probabilities", "y_test", "class_names"],
                outputs=["test_metrics", "classification_report", "test_predictions"],
                name="evaluate_predictions",
            ),
            Node(
                plot_training_curves,
                inputs=["training_history", "params:model_training.checkpoint.monitor"],
                outputs=["loss_curve", "accuracy_curve"],
                name="plot_training_curves",
            ),
            Node(
                plot_confusion_matrix,
                inputs=["test_predictions", "class_names"],
                outputs="confusion_matrix_plot",
                name="plot_confusion_matrix",
            ),
            Node(
                plot_confident_mistakes,
                inputs=[
                    "x_test",
                    "test_predictions",
                    "class_names",
                    "params:reporting.mistakes_to_show",
                ],
                outputs="confident_mistakes_plot",
                name="plot_confident_mistakes",
            ),
        ],
        tags=["reporting"],
    )
