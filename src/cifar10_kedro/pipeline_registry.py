"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

from cifar10_kedro.pipelines import compare, data_ingestion, model_training, reporting


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects: each folder of
        ``pipelines/`` (only the requested ones when ``kedro run --pipelines`` names
        some), ``__default__`` (data_ingestion, model_training, reporting) and
        ``compare`` made whole (the default run plus the variants and the
        comparison). Pipelines run by name only (inference, inference_int8, export)
        are not in ``__default__``.
    """
    pipelines = find_pipelines(raise_errors=True)
    default = (
        data_ingestion.create_pipeline()
        + model_training.create_pipeline()
        + reporting.create_pipeline()
    )
    pipelines["__default__"] = default
    pipelines["compare"] = default + compare.create_pipeline()
    return pipelines
