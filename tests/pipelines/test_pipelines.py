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

# Results are versioned datasets: <path>/<version>/<name>, one version per run.
REPORT_FILES = [
    "08_reporting/test_metrics.json",
    "08_reporting/validation_metrics.json",
    "07_model_output/temperature_scaling.json",
    "08_reporting/classification_report.csv",
    "08_reporting/loss_curve.png",
    "08_reporting/accuracy_curve.png",
    "08_reporting/confusion_matrix.png",
    "08_reporting/reliability.png",
    "08_reporting/confident_mistakes.png",
    "07_model_output/test_predictions.csv",
]
TRAINING_FILES = [
    "06_models/model.keras",
    "06_models/training_config.json",
    "06_models/training_plan.json",
    "07_model_output/training_history.csv",
]
VERSIONED_FILES = [*REPORT_FILES, *TRAINING_FILES]
PLAIN_FILES = [
    "03_primary/class_names.json",
    *(f"05_model_input/{a}_{s}.pkl" for a in "xy" for s in ("train", "val", "test")),
    "08_reporting/dataset_summary.json",
    "08_reporting/sample_grid.png",
]


def versions(root: Path, name: str) -> list[str]:
    """The saved versions of a versioned dataset, oldest first."""
    folder = root / name
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def latest(root: Path, name: str) -> Path:
    """The file of the newest version of the versioned dataset ``name``."""
    found = versions(root, name)
    assert found, f"no version of {name} under {root}"
    return root / name / found[-1] / Path(name).name


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


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
def smoke_run(tmp_path_factory, cifar10_subset) -> Path:
    """Run the default pipeline once in the smoke environment; return its data root."""
    project = make_project_copy(tmp_path_factory.mktemp("project"))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.setenv("CIFAR10_RAW_PATH", str(cifar10_subset))
        run_session(project, "smoke")
    return project / "data" / "smoke"


def test_registry_lists_the_three_pipelines_and_default(tmp_path):
    bootstrap_project(make_project_copy(tmp_path))
    assert {
        "__default__",
        "data_ingestion",
        "model_training",
        "reporting",
        "compare",
        # Run on demand only, not part of __default__.
        "inference",
        "export",
        "tta_selection",
    } <= set(pipelines)
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
    missing = [f for f in PLAIN_FILES if not (smoke_run / f).is_file()]
    missing += [f for f in VERSIONED_FILES if not latest(smoke_run, f).is_file()]
    assert not missing
    # One run, one version: every result of the run carries the same one.
    assert len({versions(smoke_run, f)[0] for f in VERSIONED_FILES}) == 1
    # A finished training leaves no checkpoint behind once its outputs are saved.
    checkpoints = smoke_run / "06_models/checkpoints"
    assert not any(p.is_dir() for p in checkpoints.iterdir())


@pytest.mark.slow
def test_smoke_run_outputs_are_well_formed(smoke_run):
    summary = json.loads((smoke_run / "08_reporting/dataset_summary.json").read_text())
    # conf/smoke: 60 training images per class, 20% held out; 20 test images per class.
    assert summary["splits"]["train"]["num_images"] == 480
    assert summary["splits"]["validation"]["num_images"] == 120
    assert set(summary["splits"]["test"]["per_class"].values()) == {20}

    metrics = json.loads(
        latest(smoke_run, "08_reporting/test_metrics.json").read_text()
    )
    assert metrics["num_test_images"] == 200
    assert np.isfinite(metrics["log_loss"]) and metrics["log_loss"] > 0
    values = [metrics["accuracy"], metrics["tta"]["accuracy"]]
    values += [metrics["expected_calibration_error"]]
    values += [v for scores in metrics["per_class"].values() for v in scores.values()]
    values += list(metrics["macro_avg"].values())
    assert all(0.0 <= v <= 1.0 for v in values)

    history = pd.read_csv(latest(smoke_run, "07_model_output/training_history.csv"))
    assert list(history["epoch"]) == [1, 2]
    assert list(history.columns) == [
        "epoch",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
        "seconds",
        "best",
    ]
    predictions = pd.read_csv(latest(smoke_run, "07_model_output/test_predictions.csv"))
    assert len(predictions) == 200
    assert predictions["confidence"].between(0, 1).all()
    assert np.isclose(
        (predictions["true_label"] == predictions["predicted_label"]).mean(),
        metrics["accuracy"],
    )

    for png in (p for p in smoke_run.rglob("*.png") if p.is_file()):
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
    """`kedro run --pipeline reporting` reports on the latest model as a new version."""
    project = smoke_run.parents[1]
    before = snapshot(smoke_run)
    reports_before = {f: versions(smoke_run, f) for f in REPORT_FILES}

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        # No raw data: reporting must not need to read or decode it.
        mp.setenv("CIFAR10_RAW_PATH", str(project / "no-such-archive.tar.gz"))
        run_session(project, "smoke", pipeline_names=["reporting"])

    after = snapshot(smoke_run)
    # Nothing written before is touched; each report gains exactly one new version.
    assert {k: after[k] for k in before} == before
    for name in REPORT_FILES:
        assert len(versions(smoke_run, name)) == len(reports_before[name]) + 1
    new = {k for k in after if k not in before}
    assert len(new) == len(REPORT_FILES)
    assert all(k.split("/")[1] in {Path(f).name for f in REPORT_FILES} for k in new)


@pytest.mark.slow
def test_tta_selection_scores_each_candidate_on_validation(smoke_run):
    """`kedro run --pipeline tta_selection`: the choice of reporting.tta, made once on
    the validation split and kept as a version of its own."""
    project = smoke_run.parents[1]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.setenv("CIFAR10_RAW_PATH", str(project / "no-such-archive.tar.gz"))
        run_session(project, "smoke", pipeline_names=["tta_selection"])
    chosen = json.loads(
        latest(smoke_run, "08_reporting/tta_selection.json").read_text()
    )
    assert chosen["num_validation_images"] == 120
    assert list(chosen["candidates"]) == [
        "none",
        "flip",
        "shift 1px",
        "flip + shift 1px",
        "flip + 2 shifts 1px",
        "shift 2px",
        "flip + shift 2px",
    ]
    best = chosen["candidates"][chosen["best"]]
    assert best["accuracy"] == max(c["accuracy"] for c in chosen["candidates"].values())
    assert chosen["configured"] == "flip + 2 shifts 1px"  # conf/base's reporting.tta
    # The plain candidate is the plain validation score reporting wrote.
    validation = json.loads(
        latest(smoke_run, "08_reporting/validation_metrics.json").read_text()
    )
    assert chosen["candidates"]["none"]["accuracy"] == pytest.approx(
        validation["accuracy"]
    )


@pytest.mark.slow
def test_second_training_keeps_the_first_and_load_versions_picks_it(smoke_run):
    """A second training never overwrites the first; `--load-versions` reports on
    the earlier model while the latest is the default."""
    project = smoke_run.parents[1]
    first = versions(smoke_run, "06_models/model.keras")[0]
    first_metrics = json.loads(
        (
            smoke_run
            / "08_reporting/test_metrics.json"
            / versions(smoke_run, "08_reporting/test_metrics.json")[0]
            / "test_metrics.json"
        ).read_text()
    )
    before = snapshot(smoke_run)

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        # Another seed, so that the second model differs from the first.
        bootstrap_project(project)
        with KedroSession.create(
            project_path=project,
            env="smoke",
            runtime_params={"model_training": {"seed": 7}},
        ) as session:
            session.run(pipeline_names=["model_training"])
        second = versions(smoke_run, "06_models/model.keras")[-1]
        assert second != first
        # Every result of the first run is untouched (the checkpoint folder is the
        # working state of the latest training, not a result).
        kept = {k: v for k, v in before.items() if "checkpoints" not in k}
        assert {k: v for k, v in snapshot(smoke_run).items() if k in kept} == kept

        run_session(project, "smoke", pipeline_names=["reporting"])
        latest_metrics = json.loads(
            latest(smoke_run, "08_reporting/test_metrics.json").read_text()
        )
        run_session(
            project,
            "smoke",
            pipeline_names=["reporting"],
            load_versions={"trained_model": first, "training_history": first},
        )
        earlier_metrics = json.loads(
            latest(smoke_run, "08_reporting/test_metrics.json").read_text()
        )

    assert earlier_metrics == first_metrics  # the first model, re-evaluated
    assert latest_metrics != first_metrics  # the default is the newest model
