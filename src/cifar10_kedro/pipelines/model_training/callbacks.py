"""Keras callbacks used by ``train_model``: per-epoch record and a guard against NaN."""

from __future__ import annotations

import logging
import math
import time

import keras

logger = logging.getLogger(__name__)


class EpochRecorder(keras.callbacks.Callback):
    """Records seconds and learning rate per epoch, and logs one line per epoch."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs
        self.seconds: list[float] = []
        self.learning_rates: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)
        lr = self.model.optimizer.learning_rate
        self.learning_rates.append(float(keras.ops.convert_to_numpy(lr)))
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in (logs or {}).items())
        logger.info(
            "Epoch %d/%d (%.1f s): %s",
            epoch + 1,
            self.epochs,
            self.seconds[-1],
            metrics,
        )


class RunProgress(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, counting the epochs of the whole run.

    ``train_model`` calls ``fit`` once per epoch (to checkpoint between epochs), which
    would otherwise print "Epoch 5/5" for the fifth epoch of 26.
    """

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.run_epochs = epochs

    def set_params(self, params: dict) -> None:
        super().set_params(params)
        self.epochs = self.run_epochs


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite, and says where.

    Unlike ``keras.callbacks.TerminateOnNaN``, which stops silently, it keeps what
    went wrong in ``failure`` so that the caller can fail the run with a clear error.
    """

    def __init__(self) -> None:
        super().__init__()
        self.failure: str | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.failure = (
                f"the training loss became {float(loss)} at epoch {self._epoch + 1}, "
                f"batch {batch + 1}"
            )
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("val_loss")
        if self.failure is None and loss is not None and not math.isfinite(loss):
            self.failure = (
                f"the validation loss became {float(loss)} at epoch {epoch + 1}"
            )
            self.model.stop_training = True
