"""The benchmark script runs and prints every figure it promises (smoke env, tiny)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT
from tests.pipelines.test_pipelines import make_project_copy

FIGURES = [
    "train_img_s",
    "input_img_s",
    "input_aug_img_s",
    "seconds_per_epoch",
    "inference_img_s",
    "peak_rss_gib",
    "best_val_accuracy",
    "test_accuracy",
    "test_accuracy_tta",
    "wall_s",
]


@pytest.mark.slow
def test_benchmark_prints_speed_memory_and_accuracy(tmp_path, shared_jpeg_archive):
    project = make_project_copy(tmp_path / "project")
    completed = subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "benchmarks" / "benchmark.py"),
            "--env",
            "smoke",
            "--project",
            str(project),
        ],
        env={**os.environ, "CIFAR10_RAW_PATH": str(shared_jpeg_archive)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    printed = dict(
        line.strip().split(": ", 1)
        for line in completed.stdout.splitlines()
        if ": " in line and line.strip().split(": ", 1)[0] in FIGURES
    )
    assert set(printed) == set(FIGURES)
    for name in FIGURES:
        assert float(printed[name].replace(",", "")) > 0 or "accuracy" in name
    assert 0 <= float(printed["test_accuracy"]) <= 1
