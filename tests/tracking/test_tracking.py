"""Every run recorded in MLflow, read back with MlflowClient from a SQLite store."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from mlflow.tracking import MlflowClient
from PIL import Image

import cifar10_kedro
from cifar10_kedro.pipelines.model_training.training_state import EPOCH_METRICS
from cifar10_kedro.tracking.compare import runs_table
from tests.pipelines.test_pipelines import latest, run_session, versions
from tests.processes import environment, free_port, kedro
from tests.tracking.conftest import EXPERIMENT, kedro_run

pytestmark = pytest.mark.slow


def _json(path) -> dict:
    return json.loads(path.read_text())


def _png_base64(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_a_smoke_run_is_one_finished_run_with_every_parameter(tracked):
    run = tracked["run"]
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "__default__"
    params = run.data.params
    # Typed (pydantic) parameter groups are logged key by key.
    assert params["model_training.fit.batch_size"] == "64"
    assert params["model_training.fit.epochs"] == "2"
    assert params["model_training.model.architecture"] == "fast_cnn"
    assert params["model_training.compile.optimizer.learning_rate"] == "0.1"
    assert params["model_training.seed"] == "42"
    assert params["data_ingestion.train_per_class"] == "60"
    assert params["reporting.tta.flip"] == "True"
    assert params["reporting.calibration_bins"] == "15"


def test_each_epoch_is_one_step_of_its_metrics(tracked):
    client, run = tracked["client"], tracked["run"]
    history = pd.read_csv(
        latest(tracked["data"], "07_model_output/training_history.csv")
    )
    for name in EPOCH_METRICS:
        logged = client.get_metric_history(run.info.run_id, name)
        assert [m.step for m in logged] == [1, 2], name
        if name != "seconds":  # timed by the callback itself
            np.testing.assert_allclose(
                [m.value for m in logged], history[name], rtol=1e-5, err_msg=name
            )
    seconds = [m.value for m in client.get_metric_history(run.info.run_id, "seconds")]
    assert all(s > 0 for s in seconds)


def test_the_final_test_metrics_are_logged(tracked):
    metrics = tracked["run"].data.metrics
    report = _json(latest(tracked["data"], "08_reporting/test_metrics.json"))
    assert metrics["test_accuracy"] == pytest.approx(report["accuracy"])
    assert metrics["test_tta_accuracy"] == pytest.approx(report["tta"]["accuracy"])
    assert metrics["test_ece"] == pytest.approx(report["expected_calibration_error"])
    assert metrics["test_macro_f1"] == pytest.approx(report["macro_avg"]["f1-score"])
    for name, scores in report["per_class"].items():
        assert metrics[f"test_f1_{name}"] == pytest.approx(scores["f1-score"])
    validation = _json(latest(tracked["data"], "08_reporting/validation_metrics.json"))
    assert metrics["validation_accuracy"] == pytest.approx(validation["accuracy"])
    scaled = report["temperature_scaled"]
    assert metrics["test_temperature_scaled_ece"] == pytest.approx(
        scaled["expected_calibration_error"]
    )


def test_every_report_is_an_artifact_and_the_plots_decode(tracked, tmp_path):
    run_id = tracked["run"].info.run_id
    client = tracked["client"]
    plots = {a.path for a in client.list_artifacts(run_id, "plots")}
    reports = {a.path for a in client.list_artifacts(run_id, "reports")}
    assert plots == {
        f"plots/{name}.png"
        for name in (
            "accuracy_curve",
            "loss_curve",
            "confusion_matrix",
            "reliability",
            "confident_mistakes",
            "sample_grid",
        )
    }
    assert reports == {
        f"reports/{name}"
        for name in (
            "classification_report.csv",
            "dataset_summary.json",
            "test_metrics.json",
            "validation_metrics.json",
            "temperature_scaling.json",
            "training_history.csv",
        )
    }
    local = client.download_artifacts(run_id, "plots", str(tmp_path))
    for path in sorted(tmp_path.glob("plots/*.png")):
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.size[0] > 300 and image.size[1] > 200, path
    assert local
    # The artifacts are this run's versions of the reports.
    one = client.download_artifacts(
        run_id, "reports/test_metrics.json", str(tmp_path / "one")
    )
    assert _json(Path(one)) == _json(
        latest(tracked["data"], "08_reporting/test_metrics.json")
    )
    history = client.download_artifacts(
        run_id, "reports/training_history.csv", str(tmp_path / "two")
    )
    pd.testing.assert_frame_equal(
        pd.read_csv(history),
        pd.read_csv(latest(tracked["data"], "07_model_output/training_history.csv")),
    )


def test_the_run_is_tagged_with_what_ran_where(tracked):
    tags = tracked["run"].data.tags
    data = tracked["data"]
    config = _json(latest(data, "06_models/training_config.json"))
    assert tags["environment"] == "smoke"
    assert tags["keras_backend"] == keras.backend.backend()
    assert tags["precision"] == config["precision"]
    assert tags["device"].startswith(("cpu (", "gpu ("))
    assert tags["git_commit"] == tracked["commit"]
    assert tags["mlflow.source.git.commit"] == tracked["commit"]
    assert tags["package_version"] == cifar10_kedro.__version__
    assert tags["training_fingerprint"] == config["fingerprint"]
    assert tags["trained_model_version"] == versions(data, "06_models/model.keras")[0]


def test_the_model_is_registered_and_classifies_images(tracked):
    """models:/cifar10-kedro-smoke/1 is the inference pipeline with the run's model:
    it predicts what reporting predicted for the same (losslessly encoded) images."""
    client, run = tracked["client"], tracked["run"]
    (version,) = client.search_model_versions(f"name='{EXPERIMENT}'")
    assert version.run_id == run.info.run_id
    assert version.status == "READY"
    x_test = pd.read_pickle(tracked["data"] / "05_model_input/x_test.pkl")
    expected = pd.read_csv(
        latest(tracked["data"], "07_model_output/test_predictions.csv")
    )
    request = pd.DataFrame(
        {
            "file": [f"test-{i}.png" for i in range(8)],
            "image": [_png_base64(image) for image in x_test[:8]],
        }
    )
    mlflow.set_tracking_uri(tracked["uri"])
    model = mlflow.pyfunc.load_model(f"models:/{EXPERIMENT}/{version.version}")
    answer = model.predict(request)
    assert answer["file"].tolist() == request["file"].tolist()
    assert (
        answer["predicted_class"].tolist() == expected["predicted_class"][:8].tolist()
    )
    np.testing.assert_allclose(
        answer["confidence"], expected["confidence"][:8], rtol=1e-5
    )
    assert (answer["error"] == "").all()
    # A value that is not an image is that row's error, not the request's.
    bad = pd.DataFrame({"image": ["not base64!", request["image"][0]]})
    answer = model.predict(bad)
    assert answer["error"][0].startswith("'image' is not base64")
    assert answer["error"][1] == ""


def report_on(project: Path, version: str) -> None:
    """`--pipeline reporting` on the trained model ``version`` (with its history and
    configuration), in this process."""
    outputs = ("trained_model", "training_history", "training_config")
    load_versions = {name: version for name in outputs}
    run_session(
        project, "smoke", pipeline_names=["reporting"], load_versions=load_versions
    )


@pytest.fixture(scope="module")
def second_training(tracked) -> dict[str, str]:
    """A second training (another seed), then `--pipeline reporting` on each model,
    the first model last; return the two model versions."""
    project, data = tracked["project"], tracked["data"]
    first = versions(data, "06_models/model.keras")[0]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.setenv("MLFLOW_TRACKING_URI", tracked["uri"])
        mp.setenv("CIFAR10_RAW_PATH", str(tracked["raw"]))
        # Another seed: another model, from the arrays of the first run.
        with KedroSession.create(
            project_path=project,
            env="smoke",
            runtime_params={"model_training": {"seed": 7}},
        ) as session:
            session.run(pipeline_names=["model_training", "reporting"])
        run_session(project, "smoke", pipeline_names=["reporting"])
        report_on(project, first)
    return {"first": first, "second": versions(data, "06_models/model.keras")[-1]}


def test_a_reporting_run_lands_under_the_run_of_the_model_it_evaluates(
    tracked, second_training
):
    """Each reporting run is recorded as a child of the run that trained the model it
    loads."""
    data, client, first_run = tracked["data"], tracked["client"], tracked["run"]
    first, second = second_training["first"], second_training["second"]
    assert second != first
    runs = client.search_runs(
        [tracked["experiment"].experiment_id], order_by=["attributes.start_time ASC"]
    )
    assert len(runs) == 4
    _, second_run, on_second, on_first = runs
    assert second_run.data.tags["trained_model_version"] == second
    assert second_run.info.run_name == "model_training+reporting"
    assert "mlflow.parentRunId" not in second_run.data.tags  # a training is a root
    for child, parent, version in (
        (on_second, second_run, second),
        (on_first, first_run, first),
    ):
        assert child.info.run_name == "reporting"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["trained_model_version"] == version
        assert child.info.status == "FINISHED"
        plots = {a.path for a in client.list_artifacts(child.info.run_id, "plots")}
        assert "plots/confusion_matrix.png" in plots
    # The newest reports are those of the first model (the last run): its metrics.
    newest = _json(latest(data, "08_reporting/test_metrics.json"))
    assert on_first.data.metrics["test_accuracy"] == pytest.approx(newest["accuracy"])
    # The training runs keep their own figures.
    assert first_run.info.run_id != second_run.info.run_id


def test_compare_runs_prints_the_trainings_side_by_side(tracked, second_training):
    client = tracked["client"]
    mlflow.set_tracking_uri(tracked["uri"])
    table = runs_table([EXPERIMENT])
    assert table.shape[1] == 2  # the two trainings; the reporting runs are children
    assert {"test_accuracy", "test_tta_accuracy", "time", "model version"} <= set(
        table.index
    )
    assert all(table.loc["test_accuracy"] != "")
    # Only what differs between the runs: the seed, not the batch size.
    assert table.loc["param model_training.seed"].tolist() == ["7", "42"]
    assert "param model_training.fit.batch_size" not in table.index
    # Read by the first run only (the second trained from its arrays): no difference.
    assert "param data_ingestion.seed" not in table.index
    result = kedro(
        tracked["project"],
        "compare-runs",
        "--env",
        "smoke",
        env=environment(MLFLOW_TRACKING_URI=tracked["uri"]),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for row in ("test_accuracy", "test_tta_accuracy", "model version"):
        assert row in result.stdout
    for run in client.search_runs([tracked["experiment"].experiment_id]):
        if "mlflow.parentRunId" not in run.data.tags:
            assert run.info.run_id[:8] in result.stdout


def test_an_unreachable_store_costs_a_warning_not_a_result(tracked):
    """A tracking server that does not answer: the run warns once, trains, reports
    and saves as usual; nothing is recorded."""
    data = tracked["data"]
    before = len(versions(data, "06_models/model.keras"))
    reports_before = len(versions(data, "08_reporting/test_metrics.json"))
    result = kedro_run(
        tracked["project"],
        "--pipelines",
        "model_training,reporting",
        MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}",
        CIFAR10_RAW_PATH=str(tracked["raw"]),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert output.count("cannot be reached") == 1, output[-3000:]
    assert len(versions(data, "06_models/model.keras")) == before + 1
    assert len(versions(data, "08_reporting/test_metrics.json")) == reports_before + 1
    assert latest(data, "08_reporting/confusion_matrix.png").is_file()


def test_a_store_failing_during_the_run_costs_warnings_not_a_result(tracked, tmp_path):
    """The store answers, but the experiment's artifacts cannot be written (they go
    under a regular file): `--pipeline reporting` still finishes and writes every
    report; the catalog's artifact datasets warn; the run and its metrics are
    recorded."""
    data = tracked["data"]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    client = MlflowClient(uri)
    experiment = client.create_experiment(EXPERIMENT, str(blocker / "artifacts"))
    reports_before = len(versions(data, "08_reporting/test_metrics.json"))
    plots_before = len(versions(data, "08_reporting/confusion_matrix.png"))
    result = kedro_run(
        tracked["project"],
        "--pipeline",
        "reporting",
        MLFLOW_TRACKING_URI=uri,
        CIFAR10_RAW_PATH=str(tracked["raw"]),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "MLflow tracking: could not log" in output
    assert len(versions(data, "08_reporting/test_metrics.json")) == reports_before + 1
    assert len(versions(data, "08_reporting/confusion_matrix.png")) == plots_before + 1
    (run,) = client.search_runs([experiment])
    assert run.info.status == "FINISHED"
    assert "test_accuracy" in run.data.metrics


def test_a_run_whose_start_half_failed_is_ended_not_left_active(tracked, tmp_path):
    """kedro-mlflow starts the run, then the store fails on its first tags: the run
    is still ended when the pipeline ends, so that no later session in the process
    (a notebook's) is recorded inside it."""
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = versions(tracked["data"], "06_models/model.keras")[0]

    def failing(tags):
        raise MlflowException("the store failed (test)")

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tracked["project"])
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("CIFAR10_RAW_PATH", str(tracked["raw"]))
        mp.setattr(mlflow, "set_tags", failing)
        # The first model's reports, as the newest ones are already (second_training).
        report_on(tracked["project"], first)
    assert mlflow.active_run() is None
    client = MlflowClient(uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name(EXPERIMENT).experiment_id]
    )
    assert run.info.status == "FINISHED"


def test_tracking_turned_off_records_nothing(tracked):
    client = tracked["client"]
    experiment = tracked["experiment"].experiment_id
    runs_before = len(client.search_runs([experiment]))
    reports_before = len(versions(tracked["data"], "08_reporting/test_metrics.json"))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tracked["project"])
        mp.setenv("MLFLOW_TRACKING_URI", tracked["uri"])
        mp.setenv("CIFAR10_KEDRO_TRACKING", "false")
        run_session(tracked["project"], "smoke", pipeline_names=["reporting"])
    assert len(client.search_runs([experiment])) == runs_before
    after = len(versions(tracked["data"], "08_reporting/test_metrics.json"))
    assert after == reports_before + 1
    assert mlflow.active_run() is None


def test_the_local_store_is_in_the_project_folder(tmp_path):
    """Without MLFLOW_TRACKING_URI: sqlite:///mlflow.db of the project, its artifacts
    in mlartifacts/ beside it, whatever the current directory."""
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    from tests.pipelines.test_pipelines import make_project_copy  # noqa: PLC0415

    project = make_project_copy(tmp_path / "project")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.chdir(tmp_path)
        bootstrap_project(project)
        with KedroSession.create(project_path=project, env="smoke") as session:
            config = session.load_context().mlflow
    assert config.server.mlflow_tracking_uri == f"sqlite:///{project / 'mlflow.db'}"
    assert (project / "mlflow.db").is_file()
    client = MlflowClient(config.server.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment.artifact_location == (project / "mlartifacts").as_uri()
