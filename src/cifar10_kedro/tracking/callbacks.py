"""The Keras callback that records each epoch in MLflow as it ends."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from typing import Any

import keras

from .metrics import EPOCH_METRICS

logger = logging.getLogger(__name__)


def epoch_row(epoch: int, logs: dict[str, Any], model: keras.Model) -> dict[str, float]:
    """Return an epoch's figures as the history names them (the first compiled
    metric, whatever its name, is 'accuracy'), without ``seconds``."""
    logs = {k: float(v) for k, v in logs.items()}
    metric = next(
        (
            k
            for k in logs
            if k not in {"loss", "learning_rate"} and not k.startswith("val_")
        ),
        None,
    )
    row = {"loss": logs.get("loss"), "val_loss": logs.get("val_loss")}
    if metric is not None:
        row["accuracy"] = logs.get(metric)
        row["val_accuracy"] = logs.get(f"val_{metric}")
    rate = getattr(model.optimizer, "learning_rate", None)
    if rate is not None:
        row["learning_rate"] = float(keras.ops.convert_to_numpy(rate))
    return {k: v for k, v in row.items() if v is not None}


class MlflowEpochMetrics(keras.callbacks.Callback):
    """Logs each completed epoch's loss, accuracy, val_loss, val_accuracy, learning
    rate and seconds to the MLflow run ``run_id``, at step = the epoch number
    (1-based, as the history), so that the MLflow UI shows a run live.

    Put it after ``ResumableTraining`` (``train_model`` does): an epoch is logged once
    its checkpoint is saved, so a resumed run never logs an epoch twice. An epoch whose
    figures are not finite (a diverged training) is not logged. If logging fails (the
    store went away), it warns once and training goes on.
    """

    def __init__(self, client: Any, run_id: str, prefix: str = "") -> None:
        super().__init__()
        self.client, self.run_id, self.prefix = client, run_id, prefix
        self.broken = False
        self._start = self._validated = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start, self._validated = time.perf_counter(), 0.0

    def on_test_end(self, logs: dict | None = None) -> None:
        # The end of an epoch's validation, before other callbacks save checkpoints.
        self._validated = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = epoch_row(epoch, logs or {}, self.model)
        row["seconds"] = (self._validated or time.perf_counter()) - self._start
        if all(math.isfinite(v) for v in row.values()):
            self.log({epoch + 1: row})

    def log(self, rows: dict[int, dict[str, float]]) -> None:
        """Log ``{step: {name: value}}`` (the names of EPOCH_METRICS)."""
        if self.broken or not rows:
            return
        log_epochs(self.client, self.run_id, rows, self.prefix, on_error=self._failed)

    def _failed(self, exc: Exception) -> None:
        self.broken = True
        logger.warning(
            "Could not log the epoch's metrics to MLflow run %s (%s: %s); training "
            "goes on, and no further epochs are logged.",
            self.run_id,
            type(exc).__name__,
            exc,
        )


def log_epochs(
    client: Any,
    run_id: str,
    rows: dict[int, dict[str, float]],
    prefix: str = "",
    on_error: Any = None,
) -> None:
    """Log epoch rows ``{step: {name: value}}`` to ``run_id`` in one request."""
    from mlflow.entities import Metric  # noqa: PLC0415

    now = int(time.time() * 1000)
    metrics: Iterable[Metric] = [
        Metric(f"{prefix}{name}", float(row[name]), now, step)
        for step, row in sorted(rows.items())
        for name in EPOCH_METRICS
        if name in row
    ]
    try:
        client.log_batch(run_id, metrics=list(metrics), synchronous=True)
    except Exception as exc:
        if on_error is None:
            raise
        on_error(exc)
