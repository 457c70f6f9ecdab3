"""Which version of ``trained_model`` a run or the service uses.

Nodes cannot see dataset versions, so ``TrainedModelVersionHook`` resolves the one
``trained_model`` will load (the newest, or the one ``--load-versions
trained_model:V`` names) before a pipeline that needs it runs, and provides it as the
in-memory dataset ``trained_model_version``. A versioned dataset caches the version it
resolved, so the model the run loads is that version even if a training finishes in
the meantime.
"""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import AbstractVersionedDataset, DatasetError, MemoryDataset

from cifar10_kedro.pipelines.names import TRAINED_MODEL as MODEL

logger = logging.getLogger(__name__)

MODEL_VERSION = "trained_model_version"
UNVERSIONED = "unversioned"


def resolve_model_version(catalog: Any, name: str = MODEL) -> str:
    """Return the version ``name`` loads: its timestamp, or "unversioned".

    Raises ``DatasetError`` saying how to get a model when there is none.
    """
    dataset = catalog.get(name)
    if not isinstance(dataset, AbstractVersionedDataset):
        return UNVERSIONED
    try:
        version = dataset.resolve_load_version()
    except DatasetError as exc:
        raise DatasetError(
            f"No trained model to use: '{name}' has no saved version ({exc}). "
            "Train one first: kedro run (or kedro run --pipeline model_training)."
        ) from exc
    return version or UNVERSIONED


class TrainedModelVersionHook:
    """Provides ``trained_model_version`` to the pipelines that read it."""

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        if MODEL_VERSION not in pipeline.inputs():
            return
        version = resolve_model_version(catalog)
        if MODEL_VERSION in catalog:  # declared, for kedro viz
            catalog.save(MODEL_VERSION, version)
        else:
            catalog[MODEL_VERSION] = MemoryDataset(version)
        logger.info("Using %s version %s.", MODEL, version)
