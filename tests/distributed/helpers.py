"""Real processes for the distributed tests: JAX on the CPU, stopped by their pids."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np

from tests.conftest import PROJECT_ROOT
from tests.processes import environment, kedro_args, start

TRAIN_TINY = Path(__file__).with_name("train_tiny.py")


def jax_environment(**extra: str | None) -> dict[str, str]:
    """The environment of a subprocess that trains under JAX on the CPU, importing
    this checkout (its tests too); ``extra`` on top (None removes a variable)."""
    # A job's variables only where ``extra`` sets them.
    job = (
        "KERAS_DISTRIBUTION_JOB_ADDRESSES",
        "KERAS_DISTRIBUTION_NUM_PROCESSES",
        "KERAS_DISTRIBUTION_PROCESS_ID",
        "XLA_FLAGS",
    )
    pythonpath = [str(PROJECT_ROOT / "src"), str(PROJECT_ROOT)]
    changes = dict.fromkeys(job) | {
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join([*pythonpath, os.environ.get("PYTHONPATH", "")]),
    }
    return environment(**(changes | extra))


def result(out: Path, tag: str) -> tuple[dict, list[np.ndarray]]:
    """What train_tiny.py wrote for ``tag`` (``<mode>-<process>``)."""
    summary = json.loads((out / f"{tag}.json").read_text())
    with np.load(out / f"{tag}.npz") as weights:
        return summary, [weights[f"arr_{i}"] for i in range(len(weights.files))]


def kedro_launch(project: Path, *args: str, env: dict[str, str]) -> subprocess.Popen:
    """Start ``kedro launch ARGS`` in ``project``; its output is read line by line."""
    return start(kedro_args("launch", *args), cwd=project, env=env)
