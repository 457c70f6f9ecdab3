"""kedro-mlflow's artifact dataset, versioned by the catalog as any other dataset."""

from __future__ import annotations

from typing import Any

from kedro.io.core import Version
from kedro_mlflow.io.artifacts import MlflowArtifactDataset


class VersionedMlflowArtifactDataset(MlflowArtifactDataset):
    """``kedro_mlflow.io.artifacts.MlflowArtifactDataset`` (the wrapped dataset saves
    its file, which is then logged to the active MLflow run) that takes
    ``versioned: true`` at its own level, as a catalog entry of any dataset does.

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
        return instance
