"""Resuming an interrupted ``train_model``, divergence, and the checkpoint's safety."""

from __future__ import annotations

import copy
import json
import logging
import re
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import pytest

from cifar10_kedro.pipelines.model_training import training_state
from cifar10_kedro.pipelines.model_training.nodes import (
    HISTORY_COLUMNS,
    NonFiniteLossError,
    build_model,
    train_model,
)
from cifar10_kedro.pipelines.model_training.training_state import (
    STATE_FILE,
    TrainingState,
)
from tests.pipelines.model_training.test_nodes import tiny_data, tiny_params

# Everything but the wall-clock seconds must match exactly.
COMPARED = [c for c in HISTORY_COLUMNS if c != "seconds"]


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no ``except Exception`` catches it."""


def train(params: dict[str, Any]) -> tuple[keras.Model, pd.DataFrame]:
    """Build and train as the pipeline does, each call a fresh model ("a new process")."""
    x_train, y_train, x_val, y_val = tiny_data()
    model = build_model(copy.deepcopy(params), x_train, y_train)
    return train_model(model, x_train, y_train, x_val, y_val, copy.deepcopy(params))


def kill_while_saving(monkeypatch, epoch: int, file: str) -> None:
    """Make the run die while it saves ``file`` of ``epoch``, before it is in place."""
    real_commit = training_state._commit  # noqa: SLF001

    def commit(tmp: Path, target: Path) -> None:
        if target.name == file and (
            file != STATE_FILE or json.loads(tmp.read_text())["epoch"] == epoch
        ):
            raise Killed
        real_commit(tmp, target)

    monkeypatch.setattr(training_state, "_commit", commit)


def weights_equal(a: keras.Model, b: keras.Model) -> bool:
    return all(
        np.array_equal(x, y)
        for x, y in zip(a.get_weights(), b.get_weights(), strict=True)
    )


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> dict[str, Any]:
    """An uninterrupted 4-epoch run of the default recipe (augmentation, dropout,
    warm-up + cosine schedule, SGD with momentum)."""
    tmp_path = tmp_path_factory.mktemp("straight")
    params = tiny_params(tmp_path, epochs=4)
    params["early_stopping"]["patience"] = 10
    best, history = train(params)
    return {"params": params, "best": best, "history": history}


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(
    straight, tmp_path, monkeypatch, caplog
) -> None:
    params = copy.deepcopy(straight["params"])
    params["checkpoint"].update(
        filepath=str(tmp_path / "best.keras"), state_dir=str(tmp_path / "resume")
    )
    # Epochs 1 and 2 complete; the process dies while writing epoch 3's state.json,
    # after epoch 3's weights file is already on disk.
    kill_while_saving(monkeypatch, epoch=3, file=STATE_FILE)
    with pytest.raises(Killed):
        train(params)
    monkeypatch.undo()
    saved = json.loads((tmp_path / "resume" / STATE_FILE).read_text())
    assert saved["epoch"] == 2
    assert (tmp_path / "best.keras").is_file()  # the best model so far is kept

    with caplog.at_level(logging.INFO):
        best, history = train(params)

    assert "Resuming training at epoch 3 of 4" in caplog.text
    assert history["epoch"].tolist() == [1, 2, 3, 4]
    pd.testing.assert_frame_equal(
        history[COMPARED], straight["history"][COMPARED], check_exact=True
    )
    assert weights_equal(best, straight["best"])
    # A finished run leaves nothing to resume: the next run starts afresh.
    assert not (tmp_path / "resume").exists()
    assert (tmp_path / "best.keras").is_file()


@pytest.mark.slow
def test_kill_while_writing_the_weights_keeps_the_previous_checkpoint(
    straight, tmp_path, monkeypatch, caplog
) -> None:
    params = copy.deepcopy(straight["params"])
    params["checkpoint"].update(
        filepath=str(tmp_path / "best.keras"), state_dir=str(tmp_path / "resume")
    )
    params["epochs"] = 2
    kill_while_saving(monkeypatch, epoch=2, file="epoch-0002.weights.h5")
    with pytest.raises(Killed):
        train(params)
    monkeypatch.undo()
    # Half-written leftovers of the killed save.
    (tmp_path / "resume" / "epoch-0002.weights.h5").write_bytes(b"\x89HDF half")
    (tmp_path / "resume" / "tmp-1234.json").write_text('{"epoch": 2, "trunc')

    with caplog.at_level(logging.INFO):
        _, history = train(params)

    assert "Resuming training at epoch 2 of 2" in caplog.text
    assert history["epoch"].tolist() == [1, 2]
    # The cosine schedule ends at 0 whatever the interruption: its position came back.
    assert history["learning_rate"].iloc[-1] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.slow
def test_checkpoint_of_other_parameters_is_not_resumed(
    tmp_path, monkeypatch, caplog
) -> None:
    params = tiny_params(tmp_path, epochs=2)
    kill_while_saving(monkeypatch, epoch=2, file=STATE_FILE)
    with pytest.raises(Killed):
        train(params)
    monkeypatch.undo()

    params["optimizer"]["learning_rate"] = 0.1
    with caplog.at_level(logging.INFO):
        _, history = train(params)

    assert "Not resuming the checkpoint" in caplog.text
    assert "differences in: model_training.optimizer.learning_rate" in caplog.text
    assert "Resuming" not in caplog.text
    assert history["epoch"].tolist() == [1, 2]


@pytest.mark.slow
def test_resume_false_starts_afresh(tmp_path, monkeypatch, caplog) -> None:
    params = tiny_params(tmp_path, epochs=2)
    kill_while_saving(monkeypatch, epoch=2, file=STATE_FILE)
    with pytest.raises(Killed):
        train(params)
    monkeypatch.undo()

    with caplog.at_level(logging.INFO):
        _, history = train({**params, "resume": False})

    assert "model_training.resume is false" in caplog.text
    assert "Resuming" not in caplog.text
    assert history["epoch"].tolist() == [1, 2]


class ExplodingRate(keras.optimizers.schedules.LearningRateSchedule):
    """A sane rate for the first ``steps`` steps, then one that makes the loss NaN."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def __call__(self, step):
        return keras.ops.where(step < self.steps, 0.01, 1e30)

    def get_config(self) -> dict[str, int]:
        return {"steps": self.steps}


@pytest.mark.slow
def test_nan_loss_fails_clearly_and_keeps_the_best_model(tmp_path) -> None:
    params = tiny_params(
        tmp_path, epochs=3, augmentation=None, lr_schedule={"name": "constant"}
    )
    x_train, y_train, x_val, y_val = tiny_data()
    model = build_model(copy.deepcopy(params), x_train, y_train)
    steps_per_epoch = len(y_train) // params["batch_size"]
    model.compile(
        optimizer=keras.optimizers.SGD(ExplodingRate(steps_per_epoch)),
        loss=model.loss,
        metrics=["accuracy"],
    )
    best_path = Path(params["checkpoint"]["filepath"])

    with pytest.raises(NonFiniteLossError) as info:
        train_model(model, x_train, y_train, x_val, y_val, params)

    message = str(info.value)
    assert re.search(
        r"^Training diverged: the training loss became (nan|inf) at epoch 2", message
    )
    assert "(epoch 1, val_accuracy=" in message
    assert f"is kept at {best_path}" in message
    assert "model_training.optimizer.learning_rate" in message
    best = keras.saving.load_model(best_path, compile=False)  # epoch 1's, intact
    assert np.isfinite(best.predict(x_val[:4], verbose=0)).all()
    state = json.loads(
        (Path(params["checkpoint"]["state_dir"]) / STATE_FILE).read_text()
    )
    assert state["epoch"] == 1  # the diverged epoch was not checkpointed


def test_early_stopping_state_counts_across_epochs() -> None:
    state = TrainingState(config={})
    row = dict.fromkeys(HISTORY_COLUMNS, 0.0)
    values = [0.5, 0.6, 0.55, 0.6, 0.58]  # val_accuracy: best at epoch 2, then none
    improved = [
        state.end_epoch(
            row,
            {"val_accuracy": v, "val_loss": 1 - v},
            monitor="val_accuracy",
            stopping_monitor="val_loss",
            patience=3,
        )
        for v in values
    ]
    assert improved == [True, True, False, False, False]
    assert (state.best_value, state.best_epoch) == (0.6, 2)
    assert state.stopping_wait == 3
    assert state.stopped_early
    assert state.epoch == 5 and len(state.history) == 5
