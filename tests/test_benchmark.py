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


def run_benchmark(project, archive, *args: str) -> str:
    completed = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "benchmarks" / "benchmark.py"), *args],
        cwd=project,
        env={**os.environ, "CIFAR10_RAW_PATH": str(archive)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return completed.stdout


@pytest.mark.slow
def test_benchmark_prints_speed_memory_and_accuracy(tmp_path, shared_jpeg_archive):
    project = make_project_copy(tmp_path / "project")
    out = run_benchmark(
        project, shared_jpeg_archive, "--env", "smoke", "--project", str(project)
    )
    printed = dict(
        line.strip().split(": ", 1)
        for line in out.splitlines()
        if ": " in line and line.strip().split(": ", 1)[0] in FIGURES
    )
    assert set(printed) == set(FIGURES)
    for name in FIGURES:
        assert float(printed[name].replace(",", "")) > 0 or "accuracy" in name
    assert 0 <= float(printed["test_accuracy"]) <= 1


@pytest.mark.slow
def test_benchmark_compare_prints_both_configurations(tmp_path, shared_jpeg_archive):
    project = make_project_copy(tmp_path / "project")
    tiny = [
        "data_ingestion.train_per_class=20",
        "data_ingestion.test_per_class=5",
    ]
    out = run_benchmark(
        project,
        shared_jpeg_archive,
        "--compare",
        "--minutes",
        "0.01",
        "--project",
        str(project),
        "--params",
        *tiny,
    )
    table = out[out.index("Same budget") :].splitlines()
    assert table[1].split() == [
        "config",
        "epochs",
        "train",
        "s",
        "val",
        "acc",
        "test",
        "acc",
        "test",
        "TTA",
    ]
    rows = {line.split()[0]: line.split()[1:] for line in table[2:4]}
    assert set(rows) == {"notebook", "base"}
    for values in rows.values():
        assert int(values[0]) >= 1  # at least one epoch
        assert 0 <= float(values[3]) <= 1  # test accuracy


@pytest.mark.slow
def test_benchmark_sweep_prints_rates(tmp_path, shared_jpeg_archive):
    project = make_project_copy(tmp_path / "project")
    out = run_benchmark(
        project,
        shared_jpeg_archive,
        "--env",
        "smoke",
        "--sweep",
        "8/8,16",
        "w/8,16",
        "--project",
        str(project),
    )
    rows = [line.split() for line in out.splitlines() if line[:2] in ("8/", "w/")]
    assert [(r[0], r[1]) for r in rows] == [
        ("8/8,16", "float32"),
        ("8/8,16", "mixed_bfloat16"),
        ("w/8,16", "float32"),
        ("w/8,16", "mixed_bfloat16"),
    ]
    assert all(float(r[-1].replace(",", "")) > 0 for r in rows)
