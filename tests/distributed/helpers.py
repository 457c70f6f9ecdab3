"""Real processes for the distributed tests: JAX on the CPU, stopped by their pids."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.conftest import PROJECT_ROOT

TRAIN_TINY = Path(__file__).with_name("train_tiny.py")


def jax_environment(**extra: str) -> dict[str, str]:
    """The environment of a subprocess that trains under JAX on the CPU, importing
    this checkout (its tests too)."""
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join(
            [
                str(PROJECT_ROOT / "src"),
                str(PROJECT_ROOT),
                os.environ.get("PYTHONPATH", ""),
            ]
        ),
        **extra,
    }
    for name in (
        "KERAS_DISTRIBUTION_JOB_ADDRESSES",
        "KERAS_DISTRIBUTION_NUM_PROCESSES",
        "KERAS_DISTRIBUTION_PROCESS_ID",
        "XLA_FLAGS",
    ):
        if name not in extra:
            env.pop(name, None)
    return env


def result(out: Path, tag: str) -> tuple[dict, list[np.ndarray]]:
    """What train_tiny.py wrote for ``tag`` (``<mode>-<process>``)."""
    summary = json.loads((out / f"{tag}.json").read_text())
    with np.load(out / f"{tag}.npz") as weights:
        return summary, [weights[f"arr_{i}"] for i in range(len(weights.files))]


def stop(processes: list[subprocess.Popen]) -> None:
    """Kill, by pid, whatever of ``processes`` still runs."""
    for process in processes:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def kedro_launch(project: Path, *args: str, env: dict[str, str]) -> subprocess.Popen:
    """Start ``kedro launch ARGS`` in ``project``; its output is read line by line."""
    return subprocess.Popen(
        [sys.executable, "-m", "kedro", "launch", *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
