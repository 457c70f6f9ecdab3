"""Everything an interrupted training needs to continue exactly where it stopped.

``ResumableTraining`` is the one Keras callback that owns a run's state: the history,
the best model, early stopping, a guard against a non-finite loss, and after every
epoch a checkpoint that ``CheckpointStore`` writes into
``<state_dir>/<configuration fingerprint>/``:

* ``epoch-NNNN.weights.h5``: the model's weights and the optimizer's variables (its
  step counter, hence the learning-rate schedule's position, moments, slow weights);
* ``best-epoch-NNNN.keras``: the best model so far, when this epoch improved it;
* ``state.json``: the epoch counter, history rows, best and early-stopping values, the
  random-generator states of the model's random layers (Keras does not save them
  with the weights) and the configuration the files belong to.

Each file is written under a temporary name, flushed and renamed into place;
``state.json`` is renamed last and is all that a resume trusts, so a kill at any
moment leaves the previous epoch's checkpoint whole. One folder per configuration:
a run with other parameters or data starts its own and leaves the others for their
configuration to resume. A finished run marks its checkpoint finished; it is deleted
only once the run's outputs are saved (``hooks.TrainingCheckpointHooks``), so a kill
between the end of training and those saves resumes to the same outputs without
training again. Keras' ``BackupAndRestore`` keeps the epoch, weights and optimizer,
but not the best model, the early-stopping state, the history or the random state.

Under data parallelism over several processes (``distribution``), process 0 alone
writes the checkpoint; every process keeps the same state in memory. At the start
the processes check that they train the same configuration and take process 0's
decision (which epoch to resume from, if any); the others then read the same files,
so ``state_dir`` must be a folder that every process sees.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from . import distribution
from .params import FitParams

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
STATE_FORMAT = 2
HISTORY_COLUMNS = [
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "seconds",
    "best",
]
# What each epoch measures (the history's columns but the epoch and `best`).
EPOCH_METRICS = [c for c in HISTORY_COLUMNS if c not in {"epoch", "best"}]


def history_row(
    epoch: int, logs: dict[str, Any], model: keras.Model, seconds: float
) -> dict[str, float]:
    """Return an epoch's history row from Keras' logs (the first compiled metric,
    whatever its name, is 'accuracy'): the epoch (1-based) and ``EPOCH_METRICS``;
    an epoch without validation (``fit.validate_last_epochs``) has NaN there."""
    logs = {k: float(v) for k, v in logs.items()}
    metric = next(
        k
        for k in logs
        if k not in {"loss", "learning_rate"} and not k.startswith("val_")
    )
    rate = model.optimizer.learning_rate
    return {
        "epoch": epoch + 1,
        "loss": logs["loss"],
        "accuracy": logs[metric],
        "val_loss": logs.get("val_loss", math.nan),
        "val_accuracy": logs.get(f"val_{metric}", math.nan),
        "learning_rate": float(keras.ops.convert_to_numpy(rate)),
        "seconds": seconds,
    }


class CheckpointError(RuntimeError):
    """A resume checkpoint that matches the run cannot be read."""


class NonFiniteLossError(RuntimeError):
    """Training diverged: the loss became NaN or infinite."""


@dataclass
class TrainingState:
    """The state of a run after ``epoch`` completed epochs."""

    config: dict[str, Any]
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_value: float | None = None
    best_epoch: int | None = None
    stopping_best: float | None = None
    stopping_wait: int = 0
    stopped_early: bool = False
    finished: bool = False
    weights_file: str | None = None
    best_model_file: str | None = None
    seed_states: list[list[int]] = field(default_factory=list)


def better(value: float, best: float | None, monitor: str) -> bool:
    """Return whether ``value`` improves on ``best``: losses fall, the rest rise."""
    if best is None:
        return True
    return value < best if monitor.endswith("loss") else value > best


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can sync a folder
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _commit(tmp: Path, target: Path) -> None:
    """Flush ``tmp`` to disk and rename it to ``target`` in one atomic step."""
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    _fsync_dir(target.parent)


def _temporary(directory: Path, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(dir=directory, prefix="tmp-", suffix=suffix)
    os.close(fd)
    return Path(name)


def seed_variables(model: keras.Model) -> list[keras.Variable]:
    """The random-generator states of the model (augmentation, dropout), in order."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def checkpoint_directory(state_dir: str | Path, config: dict[str, Any]) -> Path:
    """Return the folder of the checkpoint of the training ``config`` describes."""
    return Path(state_dir) / config["fingerprint"][:16]


class CheckpointStore:
    """Saves and restores ``TrainingState`` and the models of one configuration."""

    def __init__(self, state_dir: Path, config: dict[str, Any]):
        self.root = Path(state_dir)
        self.directory = checkpoint_directory(state_dir, config)
        self.config = config

    def best_model_path(self, state: TrainingState) -> Path:
        """Return the file of the best model so far."""
        return self.directory / state.best_model_file

    # ---------------------------------------------------------------------- start

    def start(self, model: keras.Model, fit: FitParams) -> TrainingState:
        """Return the state to continue from: this configuration's, else a new one.

        On resume the model gets the checkpoint's weights, optimizer and random state.
        """
        state = None
        if distribution.is_writer():
            self._report_other_configurations()
            state = self._read_state() if fit.resume else None
            if not fit.resume:
                logger.info(
                    "model_training.fit.resume is false: training starts at epoch 1 "
                    "and replaces any checkpoint in %s.",
                    self.directory,
                )
            if state is None:
                self.clear()
        state = self._agree(state)
        if state is None:
            if distribution.is_writer():
                logger.info(
                    "Training checkpoints (the best model so far, the state to "
                    "resume from) go to %s.",
                    self.directory,
                )
            return TrainingState(config=self.config)
        self._restore(model, state)
        if state.finished:
            logger.info(
                "Training with this configuration already finished (%d epoch(s), "
                "checkpoint in %s) but its outputs were not saved: saving them "
                "without training again.",
                state.epoch,
                self.directory,
            )
        else:
            best = (
                "none validated yet"
                if state.best_epoch is None
                else f"best {fit.checkpoint.monitor} {state.best_value:.4f} at epoch "
                f"{state.best_epoch}"
            )
            logger.info(
                "Resuming training at epoch %d of %d from the checkpoint in %s "
                "(%d completed epoch(s) restored; %s).",
                state.epoch + 1,
                fit.epochs,
                self.directory,
                state.epoch,
                best,
            )
        return state

    def _agree(self, state: TrainingState | None) -> TrainingState | None:
        """Return the state every process starts from: process 0's decision.

        With one process, ``state`` itself. With several, they first check that
        they train the same configuration (parameters and data); the others then
        read the checkpoint process 0 resumes from, if any.
        """
        topology = distribution.current()
        if topology.process_count == 1:
            return state
        digest = np.frombuffer(bytes.fromhex(self.config["fingerprint"]), np.uint8)
        mine = np.append(digest.astype(np.int32), state.epoch if state else 0)
        everyone = distribution.agree(mine.astype(np.int32))
        if not (everyone[:, :-1] == everyone[0, :-1]).all():
            raise CheckpointError(
                "The processes of this job train different configurations (their "
                "parameters or data differ; fingerprints "
                + ", ".join(
                    bytes(row[:-1].astype(np.uint8)).hex()[:16] for row in everyone
                )
                + "): every process must run the same command on the same data."
            )
        epoch = int(everyone[0, -1])
        if distribution.is_writer() or epoch == 0:
            return state
        state = self._read_state()
        if state is None or state.epoch != epoch:
            found = "nothing readable" if state is None else f"epoch {state.epoch}"
            raise CheckpointError(
                f"Process {topology.process_index} cannot see the checkpoint of epoch "
                f"{epoch} that process 0 resumes from in {self.directory} (it finds "
                f"{found}): model_training.fit.checkpoint.state_dir must be a folder "
                "that every process of the job shares."
            )
        return state

    def _report_other_configurations(self) -> None:
        """Say which checkpoints of other configurations stay beside this one."""
        if not self.root.is_dir():
            return
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if folder == self.directory:
                continue
            try:
                other = json.loads((folder / STATE_FILE).read_text())["config"]
                differences = ", ".join(_differences(other, self.config)) or "none"
            except (OSError, ValueError, KeyError, TypeError):
                differences = "unreadable"
            logger.warning(
                "A checkpoint of another training configuration is kept in %s "
                "(differences: %s); it resumes when that configuration runs again. "
                "Delete the folder if you no longer need it.",
                folder,
                differences,
            )

    def _read_state(self) -> TrainingState | None:
        path = self.directory / STATE_FILE
        if not path.exists():
            return None
        try:
            saved = json.loads(path.read_text())
            if saved.pop("format") != STATE_FORMAT:
                raise ValueError("written by another version of this project")
            state = TrainingState(**saved)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            logger.warning(
                "Ignoring the checkpoint in %s, which cannot be read (%s); training "
                "starts at epoch 1.",
                self.directory,
                exc,
            )
            return None
        if state.config != self.config:  # a fingerprint collision, or edited by hand
            logger.warning(
                "Not resuming the checkpoint in %s: it belongs to another "
                "configuration (differences in: %s). Training starts at epoch 1.",
                self.directory,
                ", ".join(_differences(state.config, self.config)),
            )
            return None
        return state

    def _restore(self, model: keras.Model, state: TrainingState) -> None:
        try:
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            model.load_weights(self.directory / state.weights_file)
            seeds = seed_variables(model)
            if len(seeds) != len(state.seed_states):
                raise ValueError(
                    f"{len(state.seed_states)} random states saved, "
                    f"{len(seeds)} in the model"
                )
            for variable, value in zip(seeds, state.seed_states, strict=True):
                variable.assign(np.asarray(value, dtype=variable.dtype))
            # No best model yet: the epochs so far were not validated.
            best = state.best_model_file
            if best is not None and not (self.directory / best).is_file():
                raise FileNotFoundError(state.best_model_file)
        except Exception as exc:
            raise CheckpointError(
                f"The checkpoint in {self.directory} matches this run but cannot be "
                f"restored ({type(exc).__name__}: {exc}). Delete that folder, or run "
                "with --params model_training.fit.resume=false, to start again."
            ) from exc

    # ----------------------------------------------------------------------- save

    def save(self, model: keras.Model, state: TrainingState, improved: bool) -> None:
        """Write the state after ``state.epoch`` epochs; a kill at any point is safe.

        Under data parallelism only process 0 writes; the others keep the same
        state in memory.
        """
        tag = f"epoch-{state.epoch:04d}"
        state.weights_file = f"{tag}.weights.h5"
        if improved:
            state.best_model_file = f"best-{tag}.keras"
        state.seed_states = [
            np.asarray(keras.ops.convert_to_numpy(v)).tolist()
            for v in seed_variables(model)
        ]
        if not distribution.is_writer():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with distribution.outside():  # process 0 alone: no collective in saving
            tmp = _temporary(self.directory, ".weights.h5")
            model.save_weights(tmp)
            _commit(tmp, self.directory / state.weights_file)
            if improved:
                tmp = _temporary(self.directory, ".keras")
                model.save(tmp)
                _commit(tmp, self.directory / state.best_model_file)
        self.save_state(state)
        keep = {STATE_FILE, state.weights_file, state.best_model_file}
        for path in self.directory.iterdir():
            if path.name not in keep:
                path.unlink(missing_ok=True)

    def save_state(self, state: TrainingState) -> None:
        tmp = _temporary(self.directory, ".json")
        tmp.write_text(json.dumps({"format": STATE_FORMAT, **asdict(state)}, indent=1))
        _commit(tmp, self.directory / STATE_FILE)

    def clear(self) -> None:
        """Remove this configuration's checkpoint (``state.json`` first, so that
        nothing half remains); process 0's job under data parallelism."""
        if distribution.is_writer() and self.directory.is_dir():
            (self.directory / STATE_FILE).unlink(missing_ok=True)
            shutil.rmtree(self.directory, ignore_errors=True)


def clear_finished_checkpoint(state_dir: str | Path, config: dict[str, Any]) -> bool:
    """Delete the checkpoint of ``config`` if its training finished; return whether
    one was deleted. Called once the trained model and history are saved."""
    directory = checkpoint_directory(state_dir, config)
    try:
        finished = json.loads((directory / STATE_FILE).read_text()).get("finished")
    except (OSError, ValueError):
        return False
    if finished:
        (directory / STATE_FILE).unlink(missing_ok=True)
        shutil.rmtree(directory, ignore_errors=True)
    return bool(finished)


class ResumableTraining(keras.callbacks.Callback):
    """The state of one training run, kept and checkpointed as ``fit`` goes.

    After each epoch it records the history row (with the seconds and learning rate
    of the epoch), updates the best model on ``fit.checkpoint.monitor`` and early
    stopping on ``fit.early_stopping``, and saves the checkpoint; at the first
    non-finite loss it stops training and keeps what went wrong in ``failure``.
    """

    def __init__(
        self, store: CheckpointStore, state: TrainingState, fit: FitParams
    ) -> None:
        super().__init__()
        self.store, self.state, self.fit = store, state, fit
        self.failure: str | None = None
        self._epoch_start = 0.0
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch, self._epoch_start = epoch, time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._stop(
                f"the training loss became {float(loss)} at epoch {self._epoch + 1}, "
                f"batch {batch + 1}"
            )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items()}
        val_loss = logs.get(
            "val_loss", 0.0
        )  # not validated this epoch: nothing to check
        if self.failure is None and not math.isfinite(val_loss):
            self._stop(f"the validation loss became {val_loss} at epoch {epoch + 1}")
        if self.failure is not None:
            return
        row = history_row(
            epoch, logs, self.model, time.perf_counter() - self._epoch_start
        )
        state, fit = self.state, self.fit
        state.epoch = epoch + 1
        monitor = fit.checkpoint.monitor
        # An epoch without validation is not a candidate (its figure is NaN).
        improved = math.isfinite(row[monitor]) and better(
            row[monitor], state.best_value, monitor
        )
        if improved:
            state.best_value, state.best_epoch = row[monitor], state.epoch
        stopping = fit.early_stopping
        if not math.isfinite(row[stopping.monitor]):
            pass  # not validated: early stopping waits (FitParams allows no patience)
        elif better(row[stopping.monitor], state.stopping_best, stopping.monitor):
            state.stopping_best, state.stopping_wait = row[stopping.monitor], 0
        else:
            state.stopping_wait += 1
        state.history.append(row)
        patience_out = (
            stopping.patience is not None and state.stopping_wait >= stopping.patience
        )
        # Stopping early only means something if epochs were left to train.
        if patience_out and state.epoch < fit.epochs:
            state.stopped_early = True
            self.model.stop_training = True
        state.finished = state.stopped_early or state.epoch >= fit.epochs
        self.store.save(self.model, state, improved)

    def _stop(self, failure: str) -> None:
        self.failure = failure
        self.model.stop_training = True

    def history(self) -> list[dict[str, Any]]:
        """Return the history rows, the checkpoint's epoch marked ``best``."""
        return [
            {**row, "best": row["epoch"] == self.state.best_epoch}
            for row in self.state.history
        ]


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Return the dotted keys whose values differ between two nested dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [
            d
            for k in keys
            for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")
        ]
    return [] if old == new else [prefix.rstrip(".")]
