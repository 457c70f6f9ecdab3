"""The MLflow model of a training run: the inference pipeline, bound to training by
kedro-mlflow's ``pipeline_ml_factory`` (``pipeline_registry``).

``kedro run`` logs it at the end of a training run (``TrackingHook``) with the trained
model and the class names as its artifacts, and registers it; then
``mlflow.pyfunc.load_model("models:/cifar10-kedro/<version>")`` or
``mlflow models serve`` classify images with it, outside Kedro. Its input is a table
with one image per row: ``image``, the file's bytes in base64 (PNG, JPEG, ... of any
size, prepared as the inference pipeline prepares files), and optionally ``file``, a
name echoed back. Its output has one row per image, as ``inference_predictions``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

import keras
import pandas as pd
from kedro.pipeline import Node, Pipeline

from cifar10_kedro.pipelines.inference.nodes import (
    PreparedBatch,
    classify_images,
    prepare_images,
)
from cifar10_kedro.pipelines.inference.params import InferenceParams
from cifar10_kedro.preprocessing import UnreadableImageError

# What the model's user gives, and the model's answer.
REQUEST = "model_request"
RESPONSE = "model_response"


def read_request(request: pd.DataFrame) -> dict[str, Callable[[], bytes]]:
    """Return a reader of each row's image, by name (``file``, or ``row <n>``).

    A value of ``image`` that is not base64 gives a reader that raises, so that its
    row carries the reason, as an unreadable file's does.
    """
    if "image" not in request.columns:
        raise ValueError(
            f"The request has the columns {list(request.columns)}; expected 'image' "
            "(each image file's bytes, base64-encoded) and optionally 'file'."
        )
    names = (
        request["file"].fillna("").astype(str).tolist()
        if "file" in request.columns
        else [""] * len(request)
    )
    readers: dict[str, Callable[[], bytes]] = {}
    for row, (name, value) in enumerate(zip(names, request["image"], strict=True)):
        key = name or f"row {row}"
        if key in readers:  # two rows of one name keep their own results
            key = f"{key} (row {row})"
        readers[key] = _decoder(value)
    return readers


def _decoder(value: object) -> Callable[[], bytes]:
    def load() -> bytes:
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        try:
            return base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise UnreadableImageError(f"'image' is not base64: {exc}") from None

    return load


def classify_request(
    model: keras.Model,
    batch: PreparedBatch,
    class_names: list[str],
    params: InferenceParams,
) -> pd.DataFrame:
    """Return ``classify_images``' table without ``model_version``: the registered
    model's version is the one the caller asked for."""
    table = classify_images(model, batch, class_names, "", params)
    return table.drop(columns="model_version")


def create_model_pipeline() -> Pipeline:
    """Return the pipeline that the logged MLflow model runs: request -> predictions.

    Its inputs besides the request are outputs of training (``trained_model``,
    ``class_names``) and ``params:inference``, which kedro-mlflow stores with it.
    """
    return Pipeline(
        [
            Node(read_request, REQUEST, "model_request_images", name="read_request"),
            Node(
                prepare_images,
                ["model_request_images", "params:inference"],
                "model_request_inputs",
                name="prepare_request_images",
            ),
            Node(
                classify_request,
                [
                    "trained_model",
                    "model_request_inputs",
                    "class_names",
                    "params:inference",
                ],
                RESPONSE,
                name="classify_request",
            ),
        ]
    )


def model_signature():
    """The MLflow signature: the request's columns (``file`` optional)."""
    from mlflow.models import ModelSignature  # noqa: PLC0415
    from mlflow.types import ColSpec, Schema  # noqa: PLC0415

    return ModelSignature(
        inputs=Schema(
            [ColSpec("string", "image"), ColSpec("string", "file", required=False)]
        )
    )


# What the logged model needs installed (pinned to this environment's versions), for
# `mlflow models serve` and `mlflow.pyfunc.load_model` elsewhere; the Keras backend's
# package is added.
REQUIREMENTS = (
    "mlflow",
    "kedro",
    "kedro-datasets",
    "kedro-mlflow",
    "keras",
    "numpy",
    "pandas",
    "pillow",
    "pydantic",
)


def model_log_arguments() -> dict[str, object]:
    """``mlflow.pyfunc.log_model`` arguments besides the pipeline: this package's code
    (the nodes and datasets the model runs) and its requirements, so that MLflow need
    not infer them by loading the model in a subprocess."""
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    import cifar10_kedro  # noqa: PLC0415

    backend = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
    packages = [*REQUIREMENTS, backend.get(keras.backend.backend(), "tensorflow")]
    requirements = []
    for package in packages:
        try:
            requirements.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            continue
    return {
        "code_paths": [str(Path(cifar10_kedro.__file__).parent)],
        "pip_requirements": requirements,
    }
