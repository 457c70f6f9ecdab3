"""Resuming an interrupted training, divergence, early stopping, and the checkpoint's
safety: in the node, and through a real ``kedro run`` killed at the worst moment."""

from __future__ import annotations

import json
import logging
import re
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import pytest

from cifar10_kedro.pipelines.model_training import training_state
from cifar10_kedro.pipelines.model_training.nodes import describe_training, train_model
from cifar10_kedro.pipelines.model_training.params import ModelTrainingParams
from cifar10_kedro.pipelines.model_training.training_state import (
    HISTORY_COLUMNS,
    STATE_FILE,
    CheckpointStore,
    NonFiniteLossError,
    ResumableTraining,
    TrainingState,
    checkpoint_directory,
    clear_finished_checkpoint,
)
from tests import processes
from tests.pipelines.model_training.helpers import (
    compiled,
    tiny_data,
    tiny_params,
    train,
    weights_equal,
)

# Everything but the wall-clock seconds must match exactly.
COMPARED = [c for c in HISTORY_COLUMNS if c != "seconds"]


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no ``except Exception`` catches it."""


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


def with_fit(params: ModelTrainingParams, **changes: Any) -> ModelTrainingParams:
    return params.model_copy(update={"fit": params.fit.model_copy(update=changes)})


def folder(params: ModelTrainingParams) -> Path:
    """The checkpoint folder of ``params`` on the tiny data."""
    config = describe_training(
        params.model, params.compile, params.fit, params.seed, *tiny_data()
    )
    return checkpoint_directory(params.fit.checkpoint.state_dir, config)


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> dict[str, Any]:
    """An uninterrupted 4-epoch run of the recipe (whitening bias, BN bias scale,
    lookahead, warm-up + linear decay, alternating flips and translation, dropout)."""
    params = tiny_params(tmp_path_factory.mktemp("straight"), fit={"epochs": 4})
    best, history = train(params)
    return {"params": params, "best": best, "history": history}


def elsewhere(params: ModelTrainingParams, tmp_path: Path) -> ModelTrainingParams:
    """The same training with its checkpoints under ``tmp_path``."""
    checkpoint = params.fit.checkpoint.model_copy(
        update={"state_dir": str(tmp_path / "checkpoints")}
    )
    return with_fit(params, checkpoint=checkpoint)


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(
    straight, tmp_path, monkeypatch, caplog
) -> None:
    params = elsewhere(straight["params"], tmp_path)
    # Epochs 1 and 2 complete; the process dies while writing epoch 3's state.json,
    # after epoch 3's weights file is already on disk.
    kill_while_saving(monkeypatch, epoch=3, file=STATE_FILE)
    with pytest.raises(Killed):
        train(params)
    monkeypatch.undo()
    saved = json.loads((folder(params) / STATE_FILE).read_text())
    assert saved["epoch"] == 2
    assert (folder(params) / saved["best_model_file"]).is_file()  # kept

    with caplog.at_level(logging.INFO):
        best, history = train(params)

    assert "Resuming training at epoch 3 of 4" in caplog.text
    assert history["epoch"].tolist() == [1, 2, 3, 4]
    pd.testing.assert_frame_equal(
        history[COMPARED], straight["history"][COMPARED], check_exact=True
    )
    assert weights_equal(best, straight["best"])


@pytest.mark.slow
def test_kill_while_writing_the_weights_keeps_the_previous_checkpoint(
    straight, tmp_path, monkeypatch, caplog
) -> None:
    params = with_fit(elsewhere(straight["params"], tmp_path), epochs=2)
    kill_while_saving(monkeypatch, epoch=2, file="epoch-0002.weights.h5")
    with pytest.raises(Killed):
        train(params)
    monkeypatch.undo()
    # Half-written leftovers of the killed save.
    (folder(params) / "epoch-0002.weights.h5").write_bytes(b"\x89HDF half")
    (folder(params) / "tmp-1234.json").write_text('{"epoch": 2, "trunc')

    with caplog.at_level(logging.INFO):
        _, history = train(params)

    assert "Resuming training at epoch 2 of 2" in caplog.text
    assert history["epoch"].tolist() == [1, 2]
    # The rate after the last step is the schedule's at that step, whatever the
    # interruption: its position (the optimizer's step counter) came back.
    x_train, y_train, *_ = tiny_data()
    schedule = compiled(params, x_train, y_train).optimizer._learning_rate  # noqa: SLF001
    final = float(schedule(2 * len(y_train) // params.fit.batch_size))
    assert history["learning_rate"].iloc[-1] == pytest.approx(final, rel=1e-6)


@pytest.mark.slow
def test_checkpoint_of_another_configuration_is_kept_and_resumed_later(
    tmp_path, monkeypatch, caplog
) -> None:
    first = tiny_params(tmp_path)
    kill_while_saving(monkeypatch, epoch=2, file=STATE_FILE)
    with pytest.raises(Killed):
        train(first)
    monkeypatch.undo()

    second = tiny_params(tmp_path, compile={"optimizer": {"learning_rate": 0.1}})
    with caplog.at_level(logging.INFO):
        _, history = train(second)
    assert "A checkpoint of another training configuration is kept in" in caplog.text
    assert "model_training.compile.optimizer.learning_rate" in caplog.text
    assert "Resuming" not in caplog.text
    assert history["epoch"].tolist() == [1, 2]
    assert (folder(first) / STATE_FILE).is_file()  # never deleted

    caplog.clear()
    with caplog.at_level(logging.INFO):
        train(first)
    assert "Resuming training at epoch 2 of 2" in caplog.text


@pytest.mark.slow
def test_resume_false_starts_afresh(tmp_path, monkeypatch, caplog) -> None:
    params = tiny_params(tmp_path)
    kill_while_saving(monkeypatch, epoch=2, file=STATE_FILE)
    with pytest.raises(Killed):
        train(params)
    monkeypatch.undo()

    with caplog.at_level(logging.INFO):
        _, history = train(with_fit(params, resume=False))

    assert "model_training.fit.resume is false" in caplog.text
    assert "Resuming" not in caplog.text
    assert history["epoch"].tolist() == [1, 2]


@pytest.mark.slow
def test_finished_training_whose_outputs_were_not_saved_returns_without_training(
    tmp_path, caplog
) -> None:
    """The process died after train_model returned, before Kedro saved its outputs:
    the checkpoint, marked finished, gives the same result without training."""
    params = tiny_params(tmp_path)
    best, history = train(params)
    assert json.loads((folder(params) / STATE_FILE).read_text())["finished"]

    with caplog.at_level(logging.INFO):
        again, history_again = train(params)
    assert "already finished" in caplog.text
    assert "Epoch" not in caplog.text
    pd.testing.assert_frame_equal(history_again, history)
    assert weights_equal(again, best)

    assert clear_finished_checkpoint(params.fit.checkpoint.state_dir, _config(params))
    assert not folder(params).exists()


def _config(params: ModelTrainingParams) -> dict[str, Any]:
    return describe_training(
        params.model, params.compile, params.fit, params.seed, *tiny_data()
    )


def test_clear_keeps_an_unfinished_checkpoint(tmp_path) -> None:
    params = tiny_params(tmp_path)
    directory = folder(params)
    directory.mkdir(parents=True)
    (directory / STATE_FILE).write_text(json.dumps({"finished": False}))
    assert not clear_finished_checkpoint(
        params.fit.checkpoint.state_dir, _config(params)
    )
    assert directory.is_dir()


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
    params = tiny_params(tmp_path, fit={"epochs": 3})
    x_train, y_train, x_val, y_val = tiny_data()
    model = compiled(params, x_train, y_train)
    model.compile(
        optimizer=keras.optimizers.SGD(ExplodingRate(len(y_train) // 50)),
        loss=model.loss,
        metrics=["accuracy"],
    )
    with pytest.raises(NonFiniteLossError) as info:
        train_model(
            model,
            x_train,
            y_train,
            x_val,
            y_val,
            params.fit,
            params.seed,
            _config(params),
        )

    message = str(info.value)
    assert re.search(
        r"^Training diverged: the training loss became (nan|inf) at epoch 2", message
    )
    assert "(epoch 1, val_accuracy=" in message
    kept = re.search(r"is kept at (\S+);", message)[1]
    assert Path(kept).parent == folder(params)
    best = keras.saving.load_model(kept, compile=False)  # epoch 1's, intact
    assert np.isfinite(best.predict(x_val[:4], verbose=0)).all()
    state = json.loads((folder(params) / STATE_FILE).read_text())
    assert state["epoch"] == 1  # the diverged epoch was not checkpointed
    assert not state["finished"]


def _tracker(tmp_path: Path, epochs: int, patience: int) -> ResumableTraining:
    """The state callback on a tiny real model, fed hand-made logs."""
    params = tiny_params(
        tmp_path,
        fit={
            "epochs": epochs,
            "early_stopping": {"monitor": "val_loss", "patience": patience},
        },
    )
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    store = CheckpointStore(tmp_path / "checkpoints", {"fingerprint": "f" * 64})
    tracker = ResumableTraining(store, TrainingState(config={}), params.fit)
    tracker.set_model(model)
    return tracker


def feed(tracker: ResumableTraining, val_losses: list[float]) -> None:
    for epoch, val_loss in enumerate(val_losses):
        tracker.on_epoch_begin(epoch)
        logs = {"loss": 1.0, "accuracy": 0.5, "val_loss": val_loss, "val_accuracy": 0.5}
        tracker.on_epoch_end(epoch, logs)
        if tracker.model.stop_training:
            break


def test_early_stopping_counts_epochs_without_improvement(tmp_path) -> None:
    tracker = _tracker(tmp_path, epochs=10, patience=2)
    feed(tracker, [1.0, 0.8, 0.9, 0.85, 0.7])
    state = tracker.state
    assert state.epoch == 4  # 0.8 at epoch 2, then two epochs without improvement
    assert state.stopped_early and state.finished
    # The checkpoint monitors val_accuracy, constant here: the first epoch stays best.
    assert (state.best_epoch, state.best_value) == (1, 0.5)
    assert [row["best"] for row in tracker.history()] == [True, False, False, False]


def test_patience_running_out_on_the_last_epoch_is_not_an_early_stop(tmp_path) -> None:
    tracker = _tracker(tmp_path, epochs=3, patience=2)
    feed(tracker, [1.0, 1.1, 1.2])
    assert tracker.state.finished
    assert not tracker.state.stopped_early


# ------------------------------------------------- a real kedro run, killed


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from kedro.framework.hooks import hook_impl
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    class KillBeforeSaving:
        @hook_impl
        def before_dataset_saved(self, dataset_name, data, node):
            if dataset_name == sys.argv[2]:
                os.kill(os.getpid(), signal.SIGKILL)

    project = Path(sys.argv[1])
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="smoke") as session:
        if sys.argv[2]:
            session._hook_manager.register(KillBeforeSaving())
        session.run(pipeline_names=["__default__"])
    """
)


@pytest.mark.slow
def test_kill_between_training_and_saving_its_outputs_loses_nothing(
    tmp_path, cifar10_subset
) -> None:
    """SIGKILL after train_model returned and its model was saved, before its history
    was: the next run saves the same training's outputs without training again, and
    only then deletes the checkpoint."""
    from tests.pipelines.test_pipelines import make_project_copy  # noqa: PLC0415

    project = make_project_copy(tmp_path / "project")
    script = tmp_path / "run.py"
    script.write_text(KILLER)
    # Wide lines (environment()'s COLUMNS): Kedro's rich log handler would wrap the
    # messages checked below.
    env = processes.environment(CIFAR10_RAW_PATH=str(cifar10_subset))

    def run(kill_at: str) -> processes.Completed:
        return processes.run(
            [sys.executable, str(script), str(project), kill_at],
            cwd=project,
            env=env,
            timeout=600,
        )

    killed = run("training_history")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    checkpoints = project / "data/smoke/06_models/checkpoints"
    (folder_,) = [p for p in checkpoints.iterdir() if p.is_dir()]
    assert json.loads((folder_ / STATE_FILE).read_text())["finished"]

    again = run("")
    output = again.stdout + again.stderr
    assert again.returncode == 0, output[-3000:]
    assert "already finished" in " ".join(output.split())
    assert not re.search(r"Epoch \d+/\d+", output)
    histories = list(
        (project / "data/smoke/07_model_output/training_history.csv").iterdir()
    )
    assert len(histories) == 1
    history = pd.read_csv(histories[0] / "training_history.csv")
    assert history["epoch"].tolist() == [1, 2]
    assert not any(p.is_dir() for p in checkpoints.iterdir())  # deleted once saved
