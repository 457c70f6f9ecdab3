"""The Keras callback that hands each epoch's figures to the tracker as it ends."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import keras

from cifar10_kedro.pipelines.model_training.training_state import history_row


class EpochLogger(keras.callbacks.Callback):
    """Calls ``log({epoch: row})`` at the end of each epoch (1-based), ``row`` being
    the epoch's history figures (``training_state.EPOCH_METRICS``; an epoch without
    validation, none of its validation figures), so that a long run can be watched
    live. An epoch whose figures are not finite (a diverged training) is not logged.

    Put it after ``ResumableTraining`` (``train_model`` does): an epoch is logged
    once its checkpoint is saved, so a resumed run never logs an epoch twice.
    """

    def __init__(self, log: Callable[[dict[int, dict[str, float]]], None]) -> None:
        super().__init__()
        self.log = log
        self._start = self._validated = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start, self._validated = time.perf_counter(), 0.0

    def on_test_end(self, logs: dict | None = None) -> None:
        # The end of the epoch's validation: the checkpoint's save is not timed.
        self._validated = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = (self._validated or time.perf_counter()) - self._start
        logs = logs or {}
        row = history_row(epoch, logs, self.model, seconds)
        del row["epoch"]
        if "val_loss" not in logs:  # fit.validate_last_epochs: not validated
            row = {k: v for k, v in row.items() if not k.startswith("val_")}
        if all(math.isfinite(v) for v in row.values()):
            self.log({epoch + 1: row})
