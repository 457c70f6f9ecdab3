"""What an interrupted training run needs to continue exactly where it stopped.

After every completed epoch ``TrainingCheckpoint.save`` writes, into ``state_dir``:

* ``epoch-NNNN.weights.h5``: the model's weights with the optimizer's variables (its
  step counter, hence the learning-rate schedule position, and its moments);
* ``best-epoch-NNNN.keras``: the best model so far, when this epoch improved it;
* ``state.json``: the epoch counter, the history rows, the best value and the
  early-stopping counter, the random-generator states of the augmentation and
  dropout layers (which Keras does not save with the weights), the names of the two
  files above, and the configuration (parameters and a digest of the data) that they
  belong to.

Every file is written to a temporary name, flushed to disk and renamed into place;
``state.json`` is renamed last and is the only thing a resume trusts, so a kill at any
moment leaves the previous epoch's checkpoint whole. Keras' ``BackupAndRestore``
callback was not enough: it overwrites its weights file in place (a kill during the
write corrupts the only copy), does not keep the early-stopping or best-model state,
the history or the random state, and resumes a checkpoint of other parameters.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
STATE_FORMAT = 1
# Parameters that do not change what training computes.
_NOT_TRAINING = ("verbose", "resume", "checkpoint")


class CheckpointError(RuntimeError):
    """A resume checkpoint that matches the run cannot be read."""


def training_config(
    params: dict[str, Any], precision: str, data: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Return what determines a training run: parameters, dtype policy and data digest.

    A checkpoint is resumed only by a run with an equal configuration.
    """
    relevant = {k: v for k, v in params.items() if k not in _NOT_TRAINING}
    relevant["checkpoint_monitor"] = params["checkpoint"]["monitor"]
    relevant["precision"] = precision
    # Only the chosen architecture's and optimizer's options matter.
    architecture = params["architecture"]
    relevant["architectures"] = (params.get("architectures") or {}).get(architecture)
    optimizer = dict(params["optimizer"])
    relevant["optimizer"] = {
        "name": optimizer["name"],
        "learning_rate": optimizer["learning_rate"],
        "options": optimizer.get(optimizer["name"]),
    }
    digest = {
        name: {
            "shape": list(array.shape),
            "dtype": str(array.dtype),
            "sha256": hashlib.sha256(np.ascontiguousarray(array).data).hexdigest(),
        }
        for name, array in data.items()
    }
    # A JSON round trip, so that it compares equal to the copy read from state.json.
    return json.loads(json.dumps({"model_training": relevant, "data": digest}))


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
    weights_file: str | None = None
    best_model_file: str | None = None
    seed_states: list[list[int]] = field(default_factory=list)

    def end_epoch(
        self,
        row: dict[str, float],
        logs: dict[str, float],
        monitor: str,
        stopping_monitor: str,
        patience: int,
    ) -> bool:
        """Record a completed epoch (its history row and Keras logs); return whether
        it is the best so far on ``monitor``."""
        self.epoch += 1
        self.history.append(row)
        improved = _better(logs[monitor], self.best_value, monitor)
        if improved:
            self.best_value, self.best_epoch = float(logs[monitor]), self.epoch
        value = float(logs[stopping_monitor])
        if _better(value, self.stopping_best, stopping_monitor):
            self.stopping_best, self.stopping_wait = value, 0
        else:
            self.stopping_wait += 1
            self.stopped_early = self.stopping_wait >= patience
        return improved


def _better(value: float, best: float | None, monitor: str) -> bool:
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
    """Return a fresh temporary path in ``directory`` ending in ``suffix``."""
    fd, name = tempfile.mkstemp(dir=directory, prefix="tmp-", suffix=suffix)
    os.close(fd)
    return Path(name)


def copy_atomically(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` so that ``target`` is never seen half-written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(target.parent, target.suffix)
    try:
        shutil.copyfile(source, tmp)
        _commit(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _seed_variables(model: keras.Model) -> list[keras.Variable]:
    """The random-generator states of the model (augmentation, dropout), in order."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


class TrainingCheckpoint:
    """Saves and restores ``TrainingState`` and the model in ``directory``.

    ``best_path`` (the parameter ``checkpoint.filepath``) always holds a copy of the
    best model so far, for people and for ``train_model`` to return.
    """

    def __init__(self, directory: Path, best_path: Path) -> None:
        self.directory = Path(directory)
        self.best_path = Path(best_path)

    # ---------------------------------------------------------------------- start

    def start(
        self, model: keras.Model, config: dict[str, Any], resume: bool
    ) -> TrainingState:
        """Return the state to continue from: a matching checkpoint's, else a new one.

        On resume the model gets the checkpoint's weights, optimizer and random state.
        """
        state = self._matching_state(config) if resume else None
        if not resume:
            logger.info(
                "model_training.resume is false: training starts at epoch 1 and "
                "replaces any checkpoint in %s.",
                self.directory,
            )
        if state is None:
            self.clear()
            self.best_path.unlink(missing_ok=True)
            return TrainingState(config=config)
        self._restore(model, state)
        copy_atomically(self.directory / state.best_model_file, self.best_path)
        logger.info(
            "Resuming training at epoch %d of %d from the checkpoint in %s "
            "(%d completed epoch(s) restored; best %s %.4f at epoch %d).",
            state.epoch + 1,
            config["model_training"]["epochs"],
            self.directory,
            state.epoch,
            config["model_training"]["checkpoint_monitor"],
            state.best_value,
            state.best_epoch,
        )
        return state

    def _matching_state(self, config: dict[str, Any]) -> TrainingState | None:
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
        if state.config != config:
            logger.warning(
                "Not resuming the checkpoint in %s: it belongs to a run with other "
                "parameters or data (differences in: %s). Training starts at epoch 1.",
                self.directory,
                ", ".join(_differences(state.config, config)),
            )
            return None
        return state

    def _restore(self, model: keras.Model, state: TrainingState) -> None:
        try:
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            model.load_weights(self.directory / state.weights_file)
            seeds = _seed_variables(model)
            if len(seeds) != len(state.seed_states):
                raise ValueError(
                    f"{len(state.seed_states)} random states saved, "
                    f"{len(seeds)} in the model"
                )
            for variable, value in zip(seeds, state.seed_states, strict=True):
                variable.assign(np.asarray(value, dtype=variable.dtype))
            if not (self.directory / state.best_model_file).is_file():
                raise FileNotFoundError(state.best_model_file)
        except Exception as exc:
            raise CheckpointError(
                f"The checkpoint in {self.directory} matches this run but cannot be "
                f"restored ({type(exc).__name__}: {exc}). Delete that folder, or run "
                "with --params model_training.resume=false, to start again."
            ) from exc

    # ----------------------------------------------------------------------- save

    def save(self, model: keras.Model, state: TrainingState, improved: bool) -> None:
        """Write the state after ``state.epoch`` epochs; a kill at any point is safe."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tag = f"epoch-{state.epoch:04d}"
        tmp = _temporary(self.directory, ".weights.h5")
        model.save_weights(tmp)
        _commit(tmp, self.directory / f"{tag}.weights.h5")
        state.weights_file = f"{tag}.weights.h5"
        if improved:
            tmp = _temporary(self.directory, ".keras")
            model.save(tmp)
            _commit(tmp, self.directory / f"best-{tag}.keras")
            state.best_model_file = f"best-{tag}.keras"
        state.seed_states = [
            np.asarray(keras.ops.convert_to_numpy(v)).tolist()
            for v in _seed_variables(model)
        ]
        tmp = _temporary(self.directory, ".json")
        tmp.write_text(json.dumps({"format": STATE_FORMAT, **asdict(state)}, indent=1))
        _commit(tmp, self.directory / STATE_FILE)
        if improved:
            copy_atomically(self.directory / state.best_model_file, self.best_path)
        keep = {STATE_FILE, state.weights_file, state.best_model_file}
        for path in self.directory.iterdir():
            if path.name not in keep:
                path.unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove the checkpoint (``state.json`` first, so that nothing half remains)."""
        if self.directory.is_dir():
            (self.directory / STATE_FILE).unlink(missing_ok=True)
            shutil.rmtree(self.directory, ignore_errors=True)


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
