"""The catalog's kedro-mlflow datasets never cost a result: a logging failure is a
warning, the file is saved, and without an active run no run is started."""

from __future__ import annotations

import json
import logging

import mlflow
import pytest
from kedro.io import DataCatalog
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from cifar10_kedro.tracking.datasets import MlflowSafeMetricsHistoryDataset


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A SQLite tracking store of its own, for the module (creating one takes
    seconds); each test has an experiment of its own."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    yield MlflowClient(uri)
    mlflow.set_tracking_uri(previous)


@pytest.fixture(autouse=True)
def no_active_run():
    """No run is left active by a test."""
    yield
    while mlflow.active_run() is not None:
        try:
            mlflow.end_run()  # off the stack first; a deleted run then refuses it
        except MlflowException:
            pass


def experiment(store, tmp_path, artifacts=None) -> str:
    return store.create_experiment(
        tmp_path.name, str(artifacts or tmp_path / "artifacts")
    )


def catalog(tmp_path) -> DataCatalog:
    """Two entries as conf/base/catalog/08_reporting.yml writes them."""
    return DataCatalog.from_config(
        {
            "report": {
                "type": "cifar10_kedro.tracking.datasets.VersionedMlflowArtifactDataset",
                "versioned": True,
                "artifact_path": "reports",
                "dataset": {
                    "type": "json.JSONDataset",
                    "filepath": str(tmp_path / "report.json"),
                },
            },
            "scores": {
                "type": "cifar10_kedro.tracking.datasets.MlflowSafeMetricsHistoryDataset",
                "prefix": "",
            },
        }
    )


SCORES = {"test_accuracy": {"value": 0.5, "step": 0}}


def saved(tmp_path) -> list:
    return sorted((tmp_path / "report.json").glob("*/report.json"))


def test_with_a_run_the_file_and_the_metrics_are_logged(store, tmp_path):
    run = mlflow.start_run(experiment_id=experiment(store, tmp_path)).info.run_id
    entries = catalog(tmp_path)
    entries.save("report", {"a": 1})
    entries.save("scores", SCORES)
    (path,) = saved(tmp_path)
    assert json.loads(path.read_text()) == {"a": 1}
    logged = store.download_artifacts(run, "reports/report.json", str(tmp_path / "x"))
    assert json.loads(open(logged).read()) == {"a": 1}  # noqa: PTH123
    assert store.get_run(run).data.metrics == {"test_accuracy": 0.5}


def test_a_failing_artifact_store_costs_a_warning(store, tmp_path, caplog):
    """The experiment's artifacts go under a regular file: MLflow cannot write
    them (a real failure of the local artifact repository)."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    artifacts = blocker / "artifacts"
    run = mlflow.start_run(experiment_id=experiment(store, tmp_path, artifacts))
    run = run.info.run_id
    entries = catalog(tmp_path)
    with caplog.at_level(logging.WARNING):
        entries.save("report", {"a": 1})
    (path,) = saved(tmp_path)
    assert json.loads(path.read_text()) == {"a": 1}
    assert "could not log" in caplog.text
    assert "outputs are saved as usual" in caplog.text
    # The run itself is untouched.
    assert store.get_run(run).info.status == "RUNNING"


def test_a_failing_metric_store_costs_a_warning(store, tmp_path, caplog):
    """The run was deleted under the dataset: MLflow refuses its metrics."""
    run = mlflow.start_run(experiment_id=experiment(store, tmp_path)).info.run_id
    store.delete_run(run)
    with caplog.at_level(logging.WARNING):
        catalog(tmp_path).save("scores", SCORES)
    assert "could not log the metrics" in caplog.text


def test_without_an_active_run_nothing_is_logged_and_no_run_started(store, tmp_path):
    created = experiment(store, tmp_path)
    mlflow.set_experiment(experiment_id=created)
    entries = catalog(tmp_path)
    entries.save("report", {"a": 1})
    entries.save("scores", SCORES)
    assert len(saved(tmp_path)) == 1
    assert mlflow.active_run() is None
    assert store.search_runs([created, "0"]) == []


def test_logging_switched_off_logs_nothing(store, tmp_path):
    run = mlflow.start_run(experiment_id=experiment(store, tmp_path)).info.run_id
    entries = catalog(tmp_path)
    for name in ("report", "scores"):
        entries[name]._logging_activated = False  # noqa: SLF001 - as kedro-mlflow does
    entries.save("report", {"a": 1})
    entries.save("scores", SCORES)
    assert len(saved(tmp_path)) == 1
    assert store.list_artifacts(run) == []
    assert store.get_run(run).data.metrics == {}


def test_the_classes_keep_the_names_kedro_mlflow_switches(tmp_path):
    """kedro-mlflow turns logging on and off for the datasets whose class name starts
    with "Mlflow" (switch_catalog_logging)."""
    entries = catalog(tmp_path)
    assert type(entries["report"]).__name__ == "MlflowJSONDataset"
    assert isinstance(entries["scores"], MlflowSafeMetricsHistoryDataset)
    assert type(entries["scores"]).__name__.startswith("Mlflow")
