"""A training killed mid-way and run again: the new MLflow run holds every epoch once,
and the interrupted training's run, left RUNNING by the killed process, is ended."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from tests.pipelines.test_pipelines import make_project_copy, versions
from tests.pipelines.test_reliability import (
    kill_after_epochs,
    tree_members,
    write_tar_gz,
)
from tests.processes import environment
from tests.tracking.conftest import EXPERIMENT, kedro_run, store_uri


@pytest.mark.slow
def test_a_resumed_training_is_recorded_whole_and_ends_the_interrupted_run(tmp_path):
    project = make_project_copy(tmp_path / "project")
    raw = write_tar_gz(tmp_path / "tiny.tar.gz", tree_members())
    data = project / "data" / "smoke"
    checkpoints = data / "06_models/checkpoints"
    epochs = 6
    uri = store_uri(project)
    args = [
        "--params",
        f"model_training.fit.epochs={epochs},model_training.fit.validate_last_epochs=null",
    ]
    env = environment(CIFAR10_RAW_PATH=str(raw), MLFLOW_TRACKING_URI=uri)

    log = tmp_path / "killed.log"
    # SIGKILL: the MLflow run is left RUNNING, nothing cleans up.
    done = kill_after_epochs(
        project, ["run", "--env", "smoke", *args], env, log, checkpoints
    )
    assert 2 <= done < epochs  # noqa: PLR2004
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    (interrupted,) = client.search_runs([experiment])
    assert interrupted.info.status == "RUNNING"

    result = kedro_run(
        project, *args, CIFAR10_RAW_PATH=str(raw), MLFLOW_TRACKING_URI=uri
    )
    output = result.stdout + result.stderr
    (tmp_path / "resumed.log").write_text(output)
    assert result.returncode == 0, output[-3000:]
    assert f"Resuming training at epoch {done + 1} of {epochs}" in output
    assert "MLflow tracking: could not" not in output  # no failure, no warning

    runs = {r.info.run_id: r for r in client.search_runs([experiment])}
    assert len(runs) == 2  # noqa: PLR2004
    ended = runs[interrupted.info.run_id]
    (run,) = (r for r in runs.values() if r.info.run_id != interrupted.info.run_id)
    assert ended.info.status == "KILLED"
    assert ended.data.tags["resumed_in"] == run.info.run_id
    assert run.info.status == "FINISHED"
    assert run.data.tags["resumed_from"] == interrupted.info.run_id
    assert run.data.tags["resumed_at_epoch"] == str(done + 1)
    # Every epoch once: those restored from the checkpoint logged at the end.
    for name in ("loss", "val_accuracy", "learning_rate", "seconds"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, name)]
        assert sorted(steps) == list(range(1, epochs + 1)), name
    assert (
        run.data.tags["trained_model_version"]
        == versions(data, "06_models/model.keras")[-1]
    )
    assert "test_accuracy" in run.data.metrics
    assert run.data.params["model_training.fit.epochs"] == str(epochs)
    (version,) = client.search_model_versions(f"name='{EXPERIMENT}'")
    assert version.run_id == run.info.run_id
