"""The ``reporting`` pipeline: metrics and plots from the saved model and history."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    evaluate_predictions,
    evaluate_validation,
    fit_temperature,
    plot_confident_mistakes,
    plot_confusion_matrix,
    plot_reliability_diagram,
    plot_training_curves,
    predict_test,
    predict_validation,
    run_scores,
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
                predict_validation,
                inputs=["trained_model", "x_val", "params:reporting"],
                outputs="validation_probabilities",
                name="predict_validation",
            ),
            Node(
                fit_temperature,
                inputs=["validation_probabilities", "y_val", "params:reporting"],
                outputs="temperature_scaling",
                name="fit_temperature",
            ),
            Node(
                evaluate_predictions,
                inputs=[
                    "test_probabilities",
                    "y_test",
                    "class_names",
                    "temperature_scaling",
                    "params:reporting",
                ],
                outputs=["test_metrics", "classification_report", "test_predictions"],
                name="evaluate_predictions",
            ),
            Node(
                evaluate_validation,
                inputs=["validation_probabilities", "y_val", "params:reporting"],
                outputs="validation_metrics",
                name="evaluate_validation",
            ),
            Node(
                plot_training_curves,
                inputs="training_history",
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
                plot_reliability_diagram,
                inputs=[
                    "test_probabilities",
                    "y_test",
                    "temperature_scaling",
                    "params:reporting",
                ],
                outputs="reliability_plot",
                name="plot_reliability_diagram",
            ),
            Node(
                plot_confident_mistakes,
                inputs=[
                    "x_test",
                    "test_predictions",
                    "class_names",
                    "params:reporting",
                ],
                outputs="confident_mistakes_plot",
                name="plot_confident_mistakes",
            ),
            # The final figures by name: the run's MLflow metrics (catalog).
            Node(
                run_scores,
                inputs=["test_metrics", "validation_metrics"],
                outputs="run_scores",
                name="collect_scores",
            ),
        ],
        tags=["reporting"],
    )
