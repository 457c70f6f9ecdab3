"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline
from kedro_mlflow.pipeline import pipeline_ml_factory
from kedro_mlflow.pipeline.pipeline_ml import KedroMlflowPipelineMLError, PipelineML

from cifar10_kedro.pipelines import compare, data_ingestion, model_training, reporting
from cifar10_kedro.tracking import model


class TrainingWithModel(PipelineML):
    """A training pipeline bound to the model that serves it (kedro-mlflow's
    ``PipelineML``) that stays a plain pipeline when ``kedro run --nodes`` and the
    like leave too little of the training to bind (kedro-mlflow raises instead)."""

    def _turn_pipeline_to_ml(self, pipeline: Pipeline) -> Pipeline:
        # Its own type, not PipelineML: what Kedro derives from a filtered run (the
        # --from-nodes it suggests after a failure) must stay safe too.
        try:
            return type(self)(
                pipeline.nodes,
                inference=self.inference,
                input_name=self.input_name,
                kpm_kwargs=self.kpm_kwargs,
                log_model_kwargs=self.log_model_kwargs,
            )
        except KedroMlflowPipelineMLError:
            return pipeline


def _with_model(training: Pipeline) -> Pipeline:
    """``training`` bound by ``pipeline_ml_factory`` to the inference pipeline that the
    run logs as its MLflow model (``cifar10_kedro.tracking.model``)."""
    bound = pipeline_ml_factory(
        training=training,
        inference=model.create_model_pipeline(),
        input_name=model.REQUEST,
        log_model_kwargs={"name": "model", "signature": model.model_signature()},
    )
    return TrainingWithModel(
        bound.nodes,
        inference=bound.inference,
        input_name=bound.input_name,
        kpm_kwargs=bound.kpm_kwargs,
        log_model_kwargs=bound.log_model_kwargs,
    )


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects: each folder of
        ``pipelines/`` (only the requested ones when ``kedro run --pipelines`` names
        some), ``__default__`` (data_ingestion, model_training, reporting) and
        ``compare`` made whole (the default run plus the variants and the
        comparison). Pipelines run by name only (inference, export) are not in
        ``__default__``. ``__default__`` and ``compare`` train the model that the
        inference pipeline of ``tracking.model`` serves: bound to it
        (``pipeline_ml_factory``), they log it to MLflow, where it is registered.
    """
    pipelines = find_pipelines(raise_errors=True)
    default = (
        data_ingestion.create_pipeline()
        + model_training.create_pipeline()
        + reporting.create_pipeline()
    )
    pipelines["__default__"] = _with_model(default)
    pipelines["compare"] = _with_model(default + compare.create_pipeline())
    return pipelines
