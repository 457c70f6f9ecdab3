"""Project hooks: checks before a run, data-parallel training, and the end of a
training's checkpoint."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import DatasetError, MemoryDataset

from cifar10_kedro.pipelines.names import (
    PLANNED_FIT,
    TRAINED_MODEL,
    TRAINING_CONFIG,
    TRAINING_HISTORY,
    TRAINING_PLAN,
    TRAINS_MODEL,
    namespaced,
)

logger = logging.getLogger(__name__)

# Datasets that one training run writes together, with one version.
TRAINING_OUTPUTS = (TRAINED_MODEL, TRAINING_HISTORY, TRAINING_CONFIG, TRAINING_PLAN)


def _siblings(name: str, names: set[str]) -> dict[str, str]:
    """Return the training outputs of the run (or variant) that wrote ``name``."""
    prefix = name.removesuffix(TRAINED_MODEL)
    return {s: prefix + s for s in TRAINING_OUTPUTS if prefix + s in names}


class PreflightHooks:
    """Fails a run early, before its first node, so that a bad input writes nothing.

    Kedro itself validates each typed ``params:`` group when it builds the catalog.
    This adds what it does not check:

    * the whole parameter tree against ``cifar10_kedro.params_schema`` (keys outside
      the typed groups, such as a misspelt group), every problem at once;
    * every model the run loads rather than produces (``trained_model`` for
      ``--pipeline reporting``) is a readable ``.keras`` archive that needs no code,
      checked without building it;
    * a model and the history and configuration it is reported with come from the
      same training run: their versions are equal.
    """

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        # Imported here: settings.py imports this module for every kedro command.
        from cifar10_kedro.datasets import KerasModelDataset  # noqa: PLC0415
        from cifar10_kedro.params_schema import validate_parameters  # noqa: PLC0415

        validate_parameters(catalog.load("parameters"))
        logger.info("Parameters match the schema (cifar10_kedro.params_schema).")
        inputs = set(pipeline.inputs())
        for name in sorted(inputs):
            if isinstance(catalog.get(name), KerasModelDataset):
                catalog.get(name).check()
                logger.info("'%s' is a model that loads in safe mode.", name)
                _check_same_run(catalog, _siblings(name, inputs))


def _check_same_run(catalog: Any, names: dict[str, str]) -> None:
    """Raise if the datasets in ``names`` would load different versions."""
    versions = {}
    for name in names.values():
        try:
            versions[name] = catalog.get(name).resolve_load_version()
        except (AttributeError, DatasetError):  # not versioned, or no version yet
            continue
    if len(set(versions.values())) > 1:
        found = ", ".join(f"{n} {v}" for n, v in versions.items())
        same = ",".join(f"{n}:<version>" for n in versions)
        raise DatasetError(
            f"The model and the training history it is reported with come from "
            f"different training runs ({found}): a run that saved one but not the "
            f"other, or --load-versions naming only one. Expected one version for "
            f"all: pass --load-versions {same}."
        )


class DistributionHooks:
    """Sets up data-parallel training before a run (``model_training.fit.distribution``).

    Before the first node: ``distribution.configure`` joins the job of a
    multi-process run (``keras.distribution.initialize``) and prepares a
    ``DataParallel`` distribution that the training nodes use. On every process
    but process 0, each dataset that the run writes is replaced by a
    ``MemoryDataset``: every process runs the whole pipeline (ingesting the raw data
    itself, in memory, and taking part in every training step), process 0 alone
    writes outputs, checkpoints and reports, and the others finish without writing.
    What a run only reads (the raw data, an earlier run's model) stays as it is.
    """

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        from cifar10_kedro.pipelines.model_training import distribution  # noqa: PLC0415
        from cifar10_kedro.pipelines.model_training.params import (  # noqa: PLC0415
            FitParams,
        )

        fit = catalog.load("params:model_training.fit")
        if not isinstance(fit, FitParams):  # the raw dict, where Kedro keeps it
            fit = FitParams.model_validate(fit)
        topology = distribution.configure(fit.distribution)
        if topology.process_index > 0:
            kept = _keep_outputs_in_memory(catalog, pipeline)
            logger.info(
                "Process %d of %d writes nothing: its %d output dataset(s) stay in "
                "memory; process 0 writes the outputs, checkpoints and reports.",
                topology.process_index,
                topology.process_count,
                kept,
            )

    @hook_impl
    def after_pipeline_run(self) -> None:
        from cifar10_kedro.pipelines.model_training import distribution  # noqa: PLC0415

        distribution.reset()

    @hook_impl
    def on_pipeline_error(self) -> None:
        from cifar10_kedro.pipelines.model_training import distribution  # noqa: PLC0415

        distribution.reset()


def _keep_outputs_in_memory(catalog: Any, pipeline: Any) -> int:
    """Replace every dataset that ``pipeline`` writes with a ``MemoryDataset``;
    return how many were replaced."""
    replaced = 0
    with _quiet("kedro.io.data_catalog", "Replacing dataset"):
        for name in sorted(pipeline.all_outputs()):
            if isinstance(catalog.get(name), MemoryDataset):
                continue
            # assign: the next node gets the object itself (a model is not copied).
            catalog[name] = MemoryDataset(copy_mode="assign")
            replaced += 1
    return replaced


@contextlib.contextmanager
def _quiet(logger_name: str, message_start: str) -> Iterator[None]:
    """Drop the records of ``logger_name`` that start with ``message_start``."""
    target = logging.getLogger(logger_name)

    def keep(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(message_start)

    target.addFilter(keep)
    try:
        yield
    finally:
        target.removeFilter(keep)


class TrainingCheckpointHooks:
    """Deletes a finished training's resume checkpoint once its outputs are saved.

    ``train_model`` returns with its checkpoint marked finished; Kedro saves the
    node's outputs after it returns. Deleting the checkpoint inside the node would
    lose the training if the process died during those saves: the next run would
    find no checkpoint and train every epoch again.
    """

    def __init__(self) -> None:
        self._pending: dict[str, dict[str, Any]] = {}

    @hook_impl
    def after_node_run(self, node: Any, inputs: dict[str, Any], outputs: Any) -> None:
        from cifar10_kedro.pipelines.model_training import distribution  # noqa: PLC0415

        # Under data parallelism, process 0 owns the checkpoint.
        if TRAINS_MODEL not in node.tags or not distribution.is_writer():
            return
        config = inputs[namespaced(node, TRAINING_CONFIG)]
        fit = inputs[namespaced(node, PLANNED_FIT)]
        self._pending[node.name] = {
            "unsaved": set(node.outputs),
            "state_dir": fit.checkpoint.state_dir,
            "config": config,
        }

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, node: Any) -> None:
        pending = self._pending.get(node.name)
        if pending is None:
            return
        pending["unsaved"].discard(dataset_name)
        if not pending["unsaved"]:
            from cifar10_kedro.pipelines.model_training.training_state import (  # noqa: PLC0415
                clear_finished_checkpoint,
            )

            del self._pending[node.name]
            if clear_finished_checkpoint(pending["state_dir"], pending["config"]):
                logger.info(
                    "The trained model and history are saved: the resume checkpoint "
                    "of this training is deleted, so the next run starts afresh."
                )
