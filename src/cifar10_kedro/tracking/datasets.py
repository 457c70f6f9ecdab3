"""kedro-mlflow's catalog datasets, versioned by the catalog and never costing a result.

The catalog logs the run's reports and final figures through kedro-mlflow's datasets:
``MlflowArtifactDataset`` (the wrapped dataset saves its file, which is then logged to
the active MLflow run) and ``MlflowMetricsHistoryDataset`` (a dictionary of metrics).
As kedro-mlflow ships them, a failure of MLflow (a store that went away, an artifact
location that cannot be written) fails the save, and so the whole ``kedro run``; and
with no active run they start one of their own. Here:

* the file is saved as usual, and the logging that fails afterwards is a warning;
* without an active MLflow run (tracking off, or a process of a multi-process job
  other than 0, which registers no tracking hook) nothing is logged and no run is
  started.
"""

from __future__ import annotations

import logging
from typing import Any

import mlflow
from kedro.io.core import Version
from kedro_mlflow.io.artifacts import MlflowArtifactDataset
from kedro_mlflow.io.metrics import MlflowMetricsHistoryDataset
from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)


def _warn(dataset: str, exc: Exception) -> None:
    logger.warning(
        "MLflow tracking: could not log %s to the MLflow run (%s: %s); the run goes "
        "on and its outputs are saved as usual.",
        dataset,
        type(exc).__name__,
        exc,
    )


def _target_run(run_id: str | None) -> str | None:
    """The run to log to: the dataset's own, else the active one, else None."""
    if run_id:
        return run_id
    active = mlflow.active_run()
    return active.info.run_id if active is not None else None


def _best_effort(base: type) -> type:
    """A subclass of kedro-mlflow's dynamic artifact dataset class ``base`` whose
    logging failures are warnings (the file is saved by ``base`` itself)."""

    class BestEffort(base):
        def _save(self, data: Any) -> None:
            logging_on = self._logging_activated
            # The path the file is saved to, known before it is saved (a versioned
            # dataset refuses a save path that exists).
            local = self._local_path() if logging_on else None
            self._logging_activated = False  # base saves the file only
            try:
                base._save(self, data)  # noqa: SLF001
            finally:
                self._logging_activated = logging_on
            if not logging_on:
                return
            run_id = _target_run(self.run_id)
            if run_id is None:
                logger.debug("No active MLflow run: %s is not logged.", self)
                return
            try:
                MlflowClient().log_artifact(run_id, local, self.artifact_path)
            except Exception as exc:  # noqa: BLE001 - tracking never costs a result
                _warn(f"{local}", exc)

        def _local_path(self) -> str:
            if hasattr(self, "_version"):
                path = self._get_save_path()
            elif hasattr(self, "_filepath"):  # pragma: no cover - not versioned
                path = self._filepath
            else:  # pragma: no cover - a folder dataset
                path = self._path
            return str(path) if not hasattr(path, "as_posix") else path.as_posix()

    BestEffort.__name__ = base.__name__  # MlflowJSONDataset, ...: "Mlflow*" as before
    BestEffort.__qualname__ = base.__qualname__
    return BestEffort


class VersionedMlflowArtifactDataset(MlflowArtifactDataset):
    """``kedro_mlflow.io.artifacts.MlflowArtifactDataset`` that takes
    ``versioned: true`` at its own level, as a catalog entry of any dataset does, and
    whose logging never fails the save (the module docstring).

    kedro-mlflow builds the wrapped dataset itself, so ``versioned: true`` inside
    ``dataset:`` gives it a save version of its own, the time it is created, and
    Kedro 1.x's catalog refuses it (all datasets of a run save one version). Here the
    catalog's version (its save version, and any ``--load-versions``) is the wrapped
    dataset's.
    """

    def __new__(  # noqa: PLR0913
        cls,
        dataset: str | dict,
        run_id: str | None = None,
        artifact_path: str | None = None,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        version: Version | None = None,
    ) -> Any:
        instance = super().__new__(
            cls,
            dataset=dataset,
            run_id=run_id,
            artifact_path=artifact_path,
            credentials=credentials,
            metadata=metadata,
        )
        if version is not None:
            instance._version = version  # noqa: SLF001 - the wrapped dataset's
        instance.__class__ = _best_effort(type(instance))
        return instance


class MlflowSafeMetricsHistoryDataset(MlflowMetricsHistoryDataset):
    """``kedro_mlflow.io.metrics.MlflowMetricsHistoryDataset`` whose logging failures
    are warnings, and which starts no run of its own (the module docstring)."""

    def _save(self, data: dict[str, Any]) -> None:
        if not self._logging_activated:
            return
        if _target_run(self._run_id) is None:
            logger.debug("No active MLflow run: the metrics are not logged.")
            return
        try:
            super()._save(data)
        except Exception as exc:  # noqa: BLE001 - tracking never costs a result
            _warn("the metrics", exc)
