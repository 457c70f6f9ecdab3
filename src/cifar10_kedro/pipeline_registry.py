"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = find_pipelines(raise_errors=True)
    # Run on demand only, with --pipeline: they use a trained model.
    on_demand = {"inference", "export"}
    pipelines["__default__"] = sum(
        pipeline for name, pipeline in pipelines.items() if name not in on_demand
    )
    return pipelines
