"""benchmarks/training_speed.py: the per-op profile of an epoch and the candidates side
by side, printed and written to JSON (smoke environment, two steps)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.pipelines.test_pipelines import make_project_copy
from tests.processes import environment, run

pytestmark = pytest.mark.slow

FUSED = "tensorflow, fused BatchNorm"


def training_speed(tmp_path: Path, archive: Path, *args: str) -> tuple[str, dict]:
    project = make_project_copy(tmp_path / "project")
    output = tmp_path / "result.json"
    script = PROJECT_ROOT / "benchmarks" / "training_speed.py"
    completed = run(
        [sys.executable, str(script), *args, "--env", "smoke", "--steps", "2"]
        + ["--output", str(output)],
        cwd=project,
        env=environment(CIFAR10_RAW_PATH=str(archive)),
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    written = json.loads(output.read_text())
    assert written["command"].startswith("python benchmarks/training_speed.py")
    assert written["env"] == "smoke"
    return completed.stdout, written


def test_the_profile_splits_an_epoch_by_op_kind(tmp_path, cifar10_subset):
    out, written = training_speed(tmp_path, cifar10_subset, "--profile")
    parts = {row["part"]: row for row in written["rows"]}
    for part in (
        "convolution, forward",
        "convolution, gradient of the kernel",
        "convolution, gradient of the input",
        "validation",
        "input pipeline (batches, flips, shifts)",
        "checkpoint (model saved)",
    ):
        assert parts[part]["epoch_s"] > 0, part
        assert part in out
    assert sum(row["share"] for row in written["rows"]) == pytest.approx(1)
    # The default trains with the fused kernel: BatchNorm's op, by its type.
    assert any("FusedBatchNormV3" in row["op"] for row in written["op_types"])


def test_a_candidate_is_measured_in_a_process_of_its_own(tmp_path, cifar10_subset):
    args = ("--candidates", FUSED, "--isa", "AVX2")
    out, written = training_speed(tmp_path, cifar10_subset, *args)
    rows = {row["candidate"]: row for row in written["rows"]}
    assert list(rows) == [FUSED]
    assert rows[FUSED]["backend"] == "tensorflow"
    for row in rows.values():
        assert row["train_img_s"] > 0
        assert len(row["step_s"]) == 2  # the first step (tracing) is not timed
        assert 0 < row["share_of_matmul_bound"]
    assert written["onednn_max_cpu_isa"] == "AVX2"
    assert written["matmul_gflop_s"] > 0
    assert "train_img_s" in out


def test_an_unknown_candidate_is_named(tmp_path, cifar10_subset):
    project = make_project_copy(tmp_path / "project")
    script = PROJECT_ROOT / "benchmarks" / "training_speed.py"
    completed = run(
        [sys.executable, str(script), "--candidates", "tensorflow, turbo"],
        cwd=project,
        env=environment(CIFAR10_RAW_PATH=str(cifar10_subset)),
        timeout=300,
    )
    assert completed.returncode == 2
    assert "unknown candidates ['tensorflow, turbo']" in completed.stderr
