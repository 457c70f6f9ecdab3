"""benchmarks/time_estimate.py: one small training on the smoke environment, its
estimate and measured times printed and written to JSON (the fields, not the ratio:
no test depends on the machine's speed)."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import PROJECT_ROOT
from tests.pipelines.test_pipelines import make_project_copy
from tests.processes import environment, run

FIGURES = [
    "configured_epochs",
    "planned_epochs",
    "epochs_run",
    "probe_steps",
    "seconds_per_step",
    "estimated_epoch_s",
    "estimated_training_s",
    "actual_epoch_s",
    "actual_training_s",
    "ratio",
    "epoch_ratio",
    "within_25_percent",
]


def run_time_estimate(tmp_path, archive, *args: str):
    """Run time_estimate.py on a copy of the project (smoke, no tracking); return the
    completed process and the project."""
    project = make_project_copy(tmp_path / "project")
    completed = run(
        [
            sys.executable,
            str(PROJECT_ROOT / "benchmarks" / "time_estimate.py"),
            "--env",
            "smoke",
            *args,
            "--project",
            str(project),
            "--output",
            str(project / "result.json"),
        ],
        cwd=project,
        env=environment(CIFAR10_RAW_PATH=str(archive), CIFAR10_KEDRO_TRACKING="false"),
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return completed, project


@pytest.mark.slow
def test_time_estimate_prints_and_writes_estimate_and_actual(tmp_path, cifar10_subset):
    completed, project = run_time_estimate(
        tmp_path,
        cifar10_subset,
        "--params",
        "model_training.fit.epochs=1",
        "--probe-steps",
        "1",
    )
    output = project / "result.json"
    printed = {
        line.strip().split(": ", 1)[0]
        for line in completed.stdout.splitlines()
        if ": " in line
    }
    assert set(FIGURES) <= printed
    written = json.loads(output.read_text())
    assert written["command"].startswith("python benchmarks/time_estimate.py")
    assert written["machine"]["cpus"] > 0
    figures = written["figures"]
    assert set(FIGURES) <= set(figures)
    assert (figures["configured_epochs"], figures["planned_epochs"]) == (1, 1)
    assert figures["epochs_run"] == 1
    assert figures["probe_steps"] == 1
    assert figures["estimated_training_s"] > 0 and figures["actual_training_s"] > 0
    assert figures["ratio"] == pytest.approx(
        figures["actual_training_s"] / figures["estimated_training_s"]
    )
    assert written["params"]["model_training"]["fit"]["resume"] is False


@pytest.mark.slow
def test_estimate_only_probes_each_size_and_trains_nothing(tmp_path, cifar10_subset):
    _, project = run_time_estimate(
        tmp_path,
        cifar10_subset,
        "--params",
        "model_training.fit.progressive_resizing=[{size: 16, share: 0.5}]",
        "--probe-steps",
        "1",
        "--estimate-only",
    )
    output = project / "result.json"
    figures = json.loads(output.read_text())["figures"]
    assert figures["epoch_sizes"] == [16, 32]  # smoke's 2 epochs
    assert set(figures["seconds_per_step_by_size"]) == {"16", "32"}
    assert figures["planned_training_s"] > 0
    assert "actual_training_s" not in figures
    models = project / "data" / "smoke" / "06_models"
    assert (models / "training_plan.json").exists()
    assert not (models / "model.keras").exists()
