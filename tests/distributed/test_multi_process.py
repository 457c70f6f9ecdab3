"""Two real processes on loopback, one CPU device each, JAX's CPU collectives (gloo).

* ``train_model`` in two processes: both finish with identical weights;
* ``kedro launch --processes 2 -- --env smoke``: the whole DAG on real data, process 0
  alone writes (one version of every output), and the exported model is an ordinary
  one from which the reporting nodes, in this one-device process, compute the
  reports the launched run wrote;
* a process killed mid-training: the launcher stops the other, names the one that
  failed and exits non-zero; the same command then resumes from the last epoch.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from cifar10_kedro.datasets import KerasModelDataset
from cifar10_kedro.pipelines.reporting.nodes import evaluate_predictions, predict_test
from tests.conftest import base_params
from tests.distributed.helpers import TRAIN_TINY, jax_environment, kedro_launch, result
from tests.pipelines.model_training.helpers import tiny_data
from tests.pipelines.test_pipelines import (
    PLAIN_FILES,
    VERSIONED_FILES,
    latest,
    make_project_copy,
    versions,
)
from tests.processes import free_port, start, stop

pytest.importorskip("jax")


@pytest.mark.slow
def test_two_processes_train_to_identical_weights(tmp_path):
    coordinator = f"127.0.0.1:{free_port()}"
    processes = [
        start(
            [sys.executable, str(TRAIN_TINY), str(tmp_path), "multi_process"],
            env=jax_environment(
                KERAS_DISTRIBUTION_JOB_ADDRESSES=coordinator,
                KERAS_DISTRIBUTION_NUM_PROCESSES="2",
                KERAS_DISTRIBUTION_PROCESS_ID=str(index),
            ),
        )
        for index in range(2)
    ]
    try:
        logs = [p.communicate(timeout=400)[0] for p in processes]
    finally:
        for process in processes:
            stop(process)
    for process, log in zip(processes, logs, strict=True):
        assert process.returncode == 0, log[-4000:]
    (first, first_weights), (second, second_weights) = (
        result(tmp_path, f"multi_process-{i}") for i in range(2)
    )
    assert [first["process_index"], second["process_index"]] == [0, 1]
    assert first["process_count"] == first["devices"] == 2
    assert first["variable_devices"] == 2  # replicated over both processes' devices
    assert first["loss"] == second["loss"]
    assert first["loss"][-1] < first["loss"][0]
    for a, b in zip(first_weights, second_weights, strict=True):
        np.testing.assert_array_equal(a, b)
    # Process 0 alone wrote the checkpoint; both loaded the best model from it.
    assert len(list((tmp_path / "checkpoints-multi_process").iterdir())) == 1


class Output:
    """The lines a ``kedro launch`` prints, collected as they come."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def pids(self) -> dict[int, int]:
        """The pids of the processes the launcher started, by process id."""
        found = re.findall(r"\[launch\] process (\d+) started \(pid (\d+)\)", self.text)
        return {int(index): int(pid) for index, pid in found}

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code


def _stop_launch(output: Output) -> None:
    """Kill the launcher and what it started, by pid, if the test left them."""
    for pid in output.pids().values():
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    stop(output.process)


def _launch_environment(raw: Path) -> dict[str, str]:
    # Tracking as configured: conf/base's store in the project copy, on.
    return jax_environment(
        CIFAR10_RAW_PATH=str(raw), MLFLOW_TRACKING_URI=None, CIFAR10_KEDRO_TRACKING=None
    )


@pytest.mark.slow
def test_kedro_launch_runs_the_smoke_dag_and_process_0_alone_writes(
    tmp_path, cifar10_subset
):
    project = make_project_copy(tmp_path / "project")
    env = _launch_environment(cifar10_subset)
    # float32: this process predicts below under its own backend what JAX predicted
    # there; mixed bfloat16 (`auto` on CPUs with native bfloat16) rounds differently
    # and flips near ties.
    launch = ("--processes", "2", "--", "--env", "smoke", "--params")
    output = Output(
        kedro_launch(
            project, *launch, "model_training.model.precision=float32", env=env
        )
    )
    try:
        code = output.wait(timeout=600)
    finally:
        _stop_launch(output)
    assert code == 0, output.text[-6000:]
    assert "[launch] all 2 processes finished." in output.text
    assert re.search(r"\[p1\].*Process 1 of 2 writes nothing", output.text)
    root = project / "data" / "smoke"
    # Two writers would have left two versions (each session has its own).
    assert {f: len(versions(root, f)) for f in VERSIONED_FILES} == {
        f: 1 for f in VERSIONED_FILES
    }
    assert all((root / f).is_file() for f in PLAIN_FILES)
    assert not any((root / "06_models" / "checkpoints").glob("*/state.json"))
    config = json.loads(latest(root, "06_models/training_config.json").read_text())
    assert config["versions"]["backend"] == "jax"
    history = pd.read_csv(latest(root, "07_model_output/training_history.csv"))
    assert history["epoch"].tolist() == [1, 2]

    # The exported model is an ordinary one: loaded in safe mode in this process (one
    # device, this test's Keras backend), the reporting pipeline's own nodes compute
    # from it the reports that the launched run wrote.
    model = KerasModelDataset(
        filepath=str(latest(root, "06_models/model.keras"))
    ).load()
    arrays = {
        name: pickle.loads((root / "05_model_input" / f"{name}.pkl").read_bytes())
        for name in ("x_test", "y_test")
    }
    params = base_params("reporting", env="smoke")
    metrics, _, _ = evaluate_predictions(
        predict_test(model, arrays["x_test"], params),
        arrays["y_test"],
        json.loads((root / "03_primary" / "class_names.json").read_text()),
        json.loads(
            latest(root, "07_model_output/temperature_scaling.json").read_text()
        ),
        params,
    )
    launched = json.loads(latest(root, "08_reporting/test_metrics.json").read_text())
    assert metrics["num_test_images"] == launched["num_test_images"] == 200
    assert metrics["accuracy"] == launched["accuracy"]
    assert metrics["log_loss"] == pytest.approx(launched["log_loss"], abs=1e-4)
    # Process 0 alone tracked the run, in the project's SQLite store (conf/base's
    # default): one MLflow run of the multi-process training.
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cifar10-kedro-smoke")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["keras_backend"] == "jax"
    modes = {
        k: v for k, v in run.data.params.items() if k.endswith("distribution.mode")
    }
    assert set(modes.values()) == {"multi_process"}, run.data.params
    assert not (project / "mlruns").exists()


def _write_arrays(root: Path) -> None:
    """Small learnable arrays where model_training reads them (no raw data)."""
    folder = root / "05_model_input"
    folder.mkdir(parents=True)
    x_train, y_train, x_val, y_val = tiny_data()
    arrays = {"x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val}
    for name, array in arrays.items():
        with open(folder / f"{name}.pkl", "wb") as handle:
            pickle.dump(array, handle)


def _completed_epochs(root: Path) -> int:
    states = list((root / "06_models" / "checkpoints").glob("*/state.json"))
    if not states:
        return 0
    try:
        return json.loads(states[0].read_text())["epoch"]
    except (OSError, ValueError, KeyError):  # being replaced
        return 0


@pytest.mark.slow
def test_a_killed_process_stops_the_job_and_the_same_command_resumes(tmp_path):
    project = make_project_copy(tmp_path / "project")
    root = project / "data" / "smoke"
    _write_arrays(root)
    epochs = 6
    command = [
        "--processes", "2", "--grace", "5", "--",
        "--env", "smoke", "--pipeline", "model_training",
        "--params", f"model_training.fit.epochs={epochs},model_training.fit.batch_size=50",
    ]  # fmt: skip
    env = jax_environment()
    output = Output(kedro_launch(project, *command, env=env))
    try:
        deadline = time.monotonic() + 400
        while _completed_epochs(root) < 1:
            assert output.process.poll() is None, output.text[-6000:]
            assert time.monotonic() < deadline, output.text[-6000:]
            time.sleep(0.1)
        victim = output.pids()[1]
        os.kill(victim, 9)  # SIGKILL: no clean-up of any kind
        code = output.wait(timeout=120)
    finally:
        _stop_launch(output)
    text = output.text
    assert code != 0, text[-6000:]
    assert f"process 1 (pid {victim}) failed: it was killed by SIGKILL" in text
    # The other was stopped, unless its collective failed first, on its own.
    assert re.search(
        rf"(stopping process 0|process 0) \(pid {output.pids()[0]}\)", text
    )
    assert "FAILED: process 1 of 2 was killed by SIGKILL" in text
    done = _completed_epochs(root)
    assert 1 <= done < epochs
    assert not versions(root, "06_models/model.keras")  # nothing saved yet

    output = Output(kedro_launch(project, *command, env=env))
    try:
        code = output.wait(timeout=400)
    finally:
        _stop_launch(output)
    text = output.text
    assert code == 0, text[-6000:]
    for index in (0, 1):
        assert re.search(
            rf"\[p{index}\].*Resuming training at epoch {done + 1} of {epochs}", text
        ), text[-6000:]
    history = pd.read_csv(latest(root, "07_model_output/training_history.csv"))
    assert history["epoch"].tolist() == list(range(1, epochs + 1))
    assert len(versions(root, "06_models/model.keras")) == 1
