"""The MLflow model of a training run: the inference request pipeline with its model,
for ``mlflow.pyfunc.load_model("models:/<experiment>/<version>")`` and ``mlflow models
serve`` outside Kedro (docs/tracking.md)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow
from kedro.io import DataCatalog

import cifar10_kedro

# What the logged model needs installed (pinned to this environment's versions), for
# `mlflow models serve` and `mlflow.pyfunc.load_model` elsewhere; plus the backend's.
REQUIREMENTS = (
    *("mlflow", "kedro", "kedro-datasets", "kedro-mlflow", "keras"),
    *("numpy", "pandas", "pillow", "pydantic"),
)


def log_model(catalog: Any, versions: dict[str, str], name: str) -> None:
    """Log ``inference.create_request_pipeline`` (a table of images, ``image``: each
    file's bytes in base64, and an optional ``file``, to their predictions) to the
    active run as its model ``model``, with kedro-mlflow's ``KedroPipelineModel``, which
    stores the pipeline's other inputs (the datasets of ``versions`` pinned to those
    versions); register it as ``name``."""
    import keras  # noqa: PLC0415
    from kedro_mlflow.mlflow import KedroPipelineModel  # noqa: PLC0415
    from mlflow.models import ModelSignature  # noqa: PLC0415
    from mlflow.types import ColSpec, Schema  # noqa: PLC0415

    from cifar10_kedro.pipelines.inference.pipeline import (  # noqa: PLC0415
        REQUEST,
        create_request_pipeline,
    )

    pipeline = create_request_pipeline()
    pinned = DataCatalog(
        {
            n: catalog.get(n).at_version(versions[n])
            if n in versions
            else catalog.get(n)
            for n in pipeline.inputs() - {REQUEST}
        }
    )
    requirements = []
    for package in (*REQUIREMENTS, keras.backend.backend()):
        with contextlib.suppress(PackageNotFoundError):
            requirements.append(f"{package}=={version(package)}")
    columns = [ColSpec("string", "image"), ColSpec("string", "file", required=False)]
    model = KedroPipelineModel(pipeline=pipeline, catalog=pinned, input_name=REQUEST)
    # No progress bars in the run's log (MLflow reads this as each upload starts).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        # An input example would be run while the model is logged: none is given.
        warnings.filterwarnings("ignore", ".*An input example was not provided")
        mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            artifacts=model.extract_pipeline_artifacts(Path(folder)),
            registered_model_name=name,
            # Given, so that MLflow need not load the model to infer them.
            signature=ModelSignature(inputs=Schema(columns)),
            code_paths=[str(Path(cifar10_kedro.__file__).parent)],
            pip_requirements=requirements,
        )
