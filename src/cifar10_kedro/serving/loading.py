"""Load what the service serves through the project's catalog, once, at start."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import DatasetError, Version

from cifar10_kedro.model_card import build_model_card
from cifar10_kedro.model_version import MODEL, UNVERSIONED, resolve_model_version
from cifar10_kedro.pipelines.inference.params import InferenceParams
from cifar10_kedro.pipelines.names import INT8_MODEL
from cifar10_kedro.prediction import check_model, onnx_model_version, onnx_predictor
from cifar10_kedro.serving.app import ServiceConfig
from cifar10_kedro.serving.params import ServingParams

CONFIG = "training_config"
PLAN = "training_plan"

logger = logging.getLogger(__name__)


def _group(params: dict[str, Any], name: str, model: Any) -> Any:
    value = params.get(name)
    # Kedro may already have validated it into its model (typed node inputs).
    return value if isinstance(value, model) else model.model_validate(value)


def load_settings(
    project_path: Path, env: str | None
) -> tuple[InferenceParams, ServingParams]:
    """Return the ``inference`` and ``serving`` parameters of ``env``."""
    bootstrap_project(project_path)
    with KedroSession.create(project_path=project_path, env=env) as session:
        params = session.load_context().params
    return _group(params, "inference", InferenceParams), _group(
        params, "serving", ServingParams
    )


def _load_version(catalog: Any, name: str, version: str, missing: str) -> Any:
    """Load version ``version`` of dataset ``name``; ``missing`` ends the error that a
    version that does not exist raises."""
    if version == UNVERSIONED:
        return catalog.load(name)
    dataset = catalog.get(name, version=Version(version, None))
    if not dataset.exists():
        raise DatasetError(f"'{name}' has no version '{version}' ({dataset}){missing}")
    return catalog.load(name, version=version)


def _load_model(catalog: Any, version: str | None) -> tuple[Any, str]:
    if version is None:
        version = resolve_model_version(catalog)
    missing = (
        "; pick one of the folders under its path, or leave --load-version out "
        "for the newest."
    )
    return _load_version(catalog, MODEL, version, missing), version


def _load_training_config(catalog: Any, version: str) -> dict[str, Any]:
    """The training configuration saved with the model, under the model's version."""
    missing = (
        f", the version of the '{MODEL}' to serve: the model card needs the "
        "configuration its training saved with it. Serve a model that this project's "
        "training wrote, or train again."
    )
    return _load_version(catalog, CONFIG, version, missing)


def _load_training_plan(catalog: Any, version: str) -> dict[str, Any] | None:
    """The training plan saved with the model, or None for a model saved without one
    (trained before plan_training, or copied alone)."""
    try:
        return _load_version(catalog, PLAN, version, ".")
    except DatasetError:
        return None


def _card(catalog: Any, **fields: Any) -> dict[str, Any]:
    """The exported model card of this version if there is one, else a new card."""
    try:
        exported = catalog.load("model_card")
    except Exception:  # none exported yet (or unreadable): build one
        exported = None
    if (
        isinstance(exported, dict)
        and exported.get("model_version") == fields["model_version"]
    ):
        return exported
    return build_model_card(**fields)


def _int8_export(catalog: Any, model_version: str) -> Any:
    """The newest int8 ONNX export, if it is of ``model_version`` (the graph records
    the version it came from)."""
    export = (
        f"`kedro run --pipeline export --load-versions {MODEL}:{model_version}`, or "
        "serve with --engine keras"
    )
    try:
        graph = catalog.load(INT8_MODEL)
    except DatasetError:
        raise DatasetError(
            f"No int8 export of {MODEL} version {model_version}: nothing was exported "
            f"yet. Run {export}."
        ) from None
    exported = onnx_model_version(graph)
    if exported != model_version:
        raise DatasetError(
            f"No int8 export of {MODEL} version {model_version}: the newest export is "
            f"of version {exported}. Run {export}."
        )
    return graph


def load_service_config(
    project_path: Path,
    env: str | None,
    model_version: str | None,
    engine: str | None = None,
) -> ServiceConfig:
    """Return the ServiceConfig of the model ``env``'s catalog loads (``model_version``,
    or the newest), warmed up so that the first request is not slow. ``engine``
    (``serving.engine`` when None): ``keras``, the model itself; ``onnx_int8``, its
    int8 ONNX export of the same version."""
    bootstrap_project(project_path)
    with KedroSession.create(project_path=project_path, env=env) as session:
        context = session.load_context()
        catalog = context.catalog
        params = context.params
        inference = _group(params, "inference", InferenceParams)
        serving = _group(params, "serving", ServingParams)
        engine = engine or serving.engine
        model, version = _load_model(catalog, model_version)
        class_names = [str(c) for c in catalog.load("class_names")]
        check_model(model, class_names)
        card = _card(
            catalog,
            model=model,
            class_names=class_names,
            model_version=version,
            training_config=_load_training_config(catalog, version),
            training_plan=_load_training_plan(catalog, version),
            resize=inference.resize,
            max_pixels=inference.max_pixels,
        )
        if engine == "onnx_int8":
            predict = onnx_predictor(_int8_export(catalog, version))
        else:

            def predict(images: np.ndarray) -> np.ndarray:
                return np.asarray(model.predict_on_batch(images))

    # Traces the predict function for a single image and for other batch sizes.
    for size in (1, 2, 3):
        predict(np.zeros((size, 32, 32, 3), dtype=np.uint8))
    logger.info(
        "Serving %s version %s (%s) with the %s engine.",
        MODEL,
        version,
        model.name,
        engine,
    )
    return ServiceConfig(
        predict=predict,
        class_names=class_names,
        model_version=version,
        model_card=card,
        resize=inference.resize,
        max_pixels=inference.max_pixels,
        default_top_k=inference.top_k,
        max_request_bytes=serving.max_request_bytes,
        max_images=serving.max_images,
        max_batch_images=serving.max_batch_images,
        decode_workers=serving.decode_workers,
        token=os.environ.get(serving.token_env_var) or None,
        token_env_var=serving.token_env_var,
    )
