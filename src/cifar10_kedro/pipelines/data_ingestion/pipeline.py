"""The ``data_ingestion`` pipeline: raw CIFAR-10 to validated, split uint8 arrays."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    plot_sample_grid,
    split_train_validation,
    subsample_test,
    subsample_train,
    summarize_dataset,
    validate_raw_data,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Return the data_ingestion pipeline."""
    return Pipeline(
        [
            Node(
                validate_raw_data,
                # The parameters let it check the coming split before anything is saved.
                inputs=["cifar10_raw", "params:data_ingestion"],
                outputs=[
                    "x_train_full_raw",
                    "y_train_full_raw",
                    "x_test_raw",
                    "y_test_raw",
                    "class_names",
                ],
                name="validate_raw_data",
            ),
            Node(
                subsample_train,
                inputs=[
                    "x_train_full_raw",
                    "y_train_full_raw",
                    "params:data_ingestion",
                ],
                outputs=["x_train_full", "y_train_full"],
                name="subsample_train",
            ),
            Node(
                subsample_test,
                inputs=["x_test_raw", "y_test_raw", "params:data_ingestion"],
                outputs=["x_test", "y_test"],
                name="subsample_test",
            ),
            Node(
                split_train_validation,
                inputs=["x_train_full", "y_train_full", "params:data_ingestion"],
                outputs=["x_train", "y_train", "x_val", "y_val"],
                name="split_train_validation",
            ),
            Node(
                summarize_dataset,
                inputs=["y_train", "y_val", "y_test", "x_train", "class_names"],
                outputs="dataset_summary",
                name="summarize_dataset",
            ),
            Node(
                plot_sample_grid,
                inputs=[
                    "x_train_full",
                    "y_train_full",
                    "class_names",
                    "params:data_ingestion",
                ],
                outputs="sample_grid",
                name="plot_sample_grid",
            ),
        ],
        tags=["data_ingestion"],
    )
