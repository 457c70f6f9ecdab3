"""benchmarks/distributed.py measures every configuration and writes them to JSON
(smoke model, a few steps, JAX on the CPU)."""

from __future__ import annotations

import json
import os
import sys

import pytest

from tests.conftest import PROJECT_ROOT
from tests.distributed.helpers import jax_environment
from tests.processes import run

pytest.importorskip("jax")


@pytest.mark.slow
def test_distributed_benchmark_measures_one_and_two_processes_and_devices(tmp_path):
    output = tmp_path / "distributed.json"
    completed = run(
        [
            sys.executable,
            str(PROJECT_ROOT / "benchmarks" / "distributed.py"),
            "--env",
            "smoke",
            "--steps",
            "3",
            "--output",
            str(output),
        ],
        cwd=tmp_path,
        env=jax_environment(),
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr
    written = json.loads(output.read_text())
    assert written["command"].startswith("python benchmarks/distributed.py --env smoke")
    assert written["machine"]["cpus"] == os.cpu_count()
    assert written["machine"]["accelerator"] == "cpu"
    rows = written["rows"]
    assert [(r["mode"], r["processes"], r["devices"]) for r in rows] == [
        ("none", 1, 1),
        ("multi_process", 2, 2),
        ("data_parallel", 1, 2),
    ]
    for row in rows:
        assert row["process"] == 0  # process 0's figures
        assert row["global_batch"] == 64  # conf/smoke's batch, split or not
        assert row["timed_steps"] == 2  # the first step (tracing) is not timed
        assert row["train_img_s"] > 0
    assert rows[0]["relative_to_1_process"] == 1
    assert any("GPU" in line for line in written["not_measured"])
    printed = [line for line in completed.stdout.splitlines() if "images/s" in line]
    assert len(printed) == 3
