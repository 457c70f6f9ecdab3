"""benchmarks/main_job.py times set-up and run.sh in a fresh clone and reads the run's
own outputs (here a repository whose scripts write what the real run writes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.processes import environment, run

SETUP = """set -e
cd "$(dirname "$0")/.."
echo set-up >> setup.calls
"""
# What `kedro run` leaves in a fresh clone: one version of each dataset.
RUN = """set -e
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ "${FAIL:-}" = 1 ] && { echo 'the run broke'; exit 3; }
v=2026-12-07T00.00.00.000Z
mkdir -p data/08_reporting/test_metrics.json/$v data/06_models/training_plan.json/$v \\
  data/07_model_output/training_history.csv/$v
cat > data/08_reporting/test_metrics.json/$v/test_metrics.json <<JSON
{"accuracy": 0.89, "tta": {"accuracy": 0.9}, "args": "$*",
 "isa": "${ONEDNN_MAX_CPU_ISA:-}", "setups": $(wc -l < setup.calls)}
JSON
echo '{"estimated_training_seconds": 30.0, "epochs": 2, "device": "cpu",
  "precision": "float32"}' \\
  > data/06_models/training_plan.json/$v/training_plan.json
printf 'epoch,seconds\\n1,10.0\\n2,14.0\\n' \\
  > data/07_model_output/training_history.csv/$v/training_history.csv
cp data/08_reporting/test_metrics.json/$v/test_metrics.json "$RESULT_COPY"
"""


@pytest.fixture
def repository(tmp_path) -> Path:
    repo = tmp_path / "project"
    (repo / "scripts").mkdir(parents=True)
    (repo / "scripts" / "setup.sh").write_text(SETUP)
    (repo / "scripts" / "run.sh").write_text(RUN)
    for command in (
        ["git", "init", "--quiet"],
        ["git", "add", "."],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
    ):
        subprocess.run(command, cwd=repo, check=True)
    return repo


def main_job(repository: Path, tmp_path: Path, *args: str, **env: str):
    return run(
        [
            sys.executable,
            str(PROJECT_ROOT / "benchmarks" / "main_job.py"),
            "--project",
            str(repository),
            "--output",
            str(tmp_path / "main-job.json"),
            *args,
        ],
        cwd=tmp_path,
        env=environment(RESULT_COPY=str(tmp_path / "seen.json"), **env),
        timeout=300,
    )


def test_the_main_job_is_timed_in_a_fresh_clone(repository, tmp_path) -> None:
    completed = main_job(repository, tmp_path, "--isa", "AVX2", "--", "--env", "smoke")
    assert completed.returncode == 0, completed.stderr[-3000:]
    written = json.loads((tmp_path / "main-job.json").read_text())
    seen = json.loads((tmp_path / "seen.json").read_text())
    # run.sh got the arguments after --, and the oneDNN cap, in a clone of HEAD.
    assert seen["args"] == "--env smoke" and seen["isa"] == "AVX2"
    assert seen["setups"] == 2  # timed once alone, once inside run.sh
    assert written["run_args"] == ["--env", "smoke"]
    assert written["machine"]["onednn_max_cpu_isa"] == "AVX2"
    assert (
        written["commit"]
        == subprocess.check_output(
            ["git", "rev-parse", "HEAD"], cwd=repository, text=True
        ).strip()
    )
    assert written["setup_s"] > 0 and written["run_s"] > 0
    assert written["with_setup_s"] == pytest.approx(
        written["setup_s"] + written["run_s"]
    )
    assert written["test_accuracy"] == 0.89 and written["test_accuracy_tta"] == 0.9
    assert written["epochs_run"] == 2 and written["actual_training_s"] == 24.0
    # time_estimate.py's definition: actual / estimated.
    assert written["ratio"] == pytest.approx(24 / 30)
    assert written["within_25_percent"] is True
    assert "test_accuracy_tta" in completed.stdout
    # The clone was temporary; the repository itself ran nothing.
    assert not (repository / "setup.calls").exists()


def test_a_failing_run_stops_with_its_log(repository, tmp_path) -> None:
    completed = main_job(repository, tmp_path, FAIL="1")
    assert completed.returncode != 0
    assert "bash scripts/run.sh failed (3)" in completed.stderr
    assert "the run broke" in completed.stderr
    assert not (tmp_path / "main-job.json").exists()
