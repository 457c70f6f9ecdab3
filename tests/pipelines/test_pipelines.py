"""The real DAG, through a KedroSession, on a small subset of the real data (smoke env)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from PIL import Image

from tests.conftest import PROJECT_ROOT

REPORT_FILES = [
    "08_reporting/test_metrics.json",
    "08_reporting/classification_report.csv",
    "08_reporting/loss_curve.png",
    "08_reporting/accuracy_curve.png",
    "08_reporting/confusion_matrix.png",
    "08_reporting/confident_mistakes.png",
    "07_model_output/test_predictions.csv",
]
ALL_FILES = [
    *REPORT_FILES,
    "03_primary/class_names.json",
    *(f"05_model_input/{a}_{s}.pkl" for a in "xy" for s in ("train", "val", "test")),
    "06_models/model.keras",
    "06_models/checkpoints/best.keras",
    "07_model_output/training_history.csv",
    "08_reporting/dataset_summary.json",
    "08_reporting/sample_grid.png",
]


def make_project_copy(destination: Path) -> Path:
    """Copy the project's configuration and metadata so runs write under ``destination``."""
    shutil.copytree(PROJECT_ROOT / "conf", destination / "conf")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", destination / "pyproject.toml")
    # The package itself is installed; bootstrap_project only needs the folder.
    (destination / "src").mkdir()
    (destination / "data").mkdir()
    return destination


def run_session(project: Path, env: str, **run_args) -> None:
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        session.run(**run_args)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, shared_jpeg_archive) -> Path:
    """Run the default pipeline once in the smoke environment; return its data root."""
    project = make_project_copy(tmp_path_factory.mktemp("project"))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.setenv("CIFAR10_RAW_PATH", str(shared_jpeg_archive))
        run_session(project, "smoke")
    return project / "data" / "smoke"


def test_registry_lists_the_three_pipelines_and_default(tmp_path):
    bootstrap_project(make_project_copy(tmp_path))
    assert set(pipelines) == {
        "__default__",
        "data_ingestion",
        "model_training",
        "reporting",
    }
    default = {n.name for n in pipelines["__default__"].nodes}
    parts = set().union(
        *(
            {n.name for n in pipelines[p].nodes}
            for p in ("data_ingestion", "model_training", "reporting")
        )
    )
    assert default == parts


@pytest.mark.slow
def test_smoke_run_writes_every_output(smoke_run):
    missing = [f for f in ALL_FILES if not (smoke_run / f).is_file()]
    assert not missing


@pytest.mark.slow
def test_smoke_run_outputs_are_well_formed(smoke_run):
    summary = json.loads((smoke_run / "08_reporting/dataset_summary.json").read_text())
    # conf/smoke: 60 training images per class, 20% held out; 20 test images per class.
    assert summary["splits"]["train"]["num_images"] == 480
    assert summary["splits"]["validation"]["num_images"] == 120
    assert set(summary["splits"]["test"]["per_class"].values()) == {20}

    metrics = json.loads((smoke_run / "08_reporting/test_metrics.json").read_text())
    assert metrics["num_test_images"] == 200
    values = [metrics["accuracy"], metrics["tta_flip"]["accuracy"]]
    values += [v for scores in metrics["per_class"].values() for v in scores.values()]
    values += list(metrics["macro_avg"].values())
    assert all(0.0 <= v <= 1.0 for v in values)
    assert np.isfinite(metrics["loss"]) and metrics["loss"] > 0

    history = pd.read_csv(smoke_run / "07_model_output/training_history.csv")
    assert list(history["epoch"]) == [1, 2]
    assert list(history.columns) == [
        "epoch",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
        "seconds",
    ]
    predictions = pd.read_csv(smoke_run / "07_model_output/test_predictions.csv")
    assert len(predictions) == 200
    assert predictions["confidence"].between(0, 1).all()
    assert np.isclose(
        (predictions["true_label"] == predictions["predicted_label"]).mean(),
        metrics["accuracy"],
    )

    for png in smoke_run.rglob("*.png"):
        with Image.open(png) as image:
            image.verify()
        with Image.open(png) as image:
            assert image.size[0] > 300 and image.size[1] > 200, png


@pytest.mark.slow
def test_trained_model_reloads_through_the_catalog_and_predicts(smoke_run):
    project = smoke_run.parents[1]
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="smoke") as session:
        catalog = session.load_context().catalog
        model = catalog.load("trained_model")
        x_test = catalog.load("x_test")
    assert x_test.dtype == np.uint8
    probabilities = np.asarray(model.predict(x_test[:8], verbose=0))
    assert probabilities.shape == (8, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-4)


@pytest.mark.slow
def test_reporting_runs_alone_from_saved_artifacts(smoke_run):
    project = smoke_run.parents[1]
    model = smoke_run / "06_models/model.keras"
    trained_at = model.stat().st_mtime_ns
    history = (smoke_run / "07_model_output/training_history.csv").read_bytes()
    for name in REPORT_FILES:
        (smoke_run / name).unlink()

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        # No raw data: reporting must not need to read or decode it.
        mp.setenv("CIFAR10_RAW_PATH", str(project / "no-such-archive.tar.gz"))
        run_session(project, "smoke", pipeline_names=["reporting"])

    assert all((smoke_run / name).is_file() for name in REPORT_FILES)
    assert model.stat().st_mtime_ns == trained_at
    assert (smoke_run / "07_model_output/training_history.csv").read_bytes() == history
