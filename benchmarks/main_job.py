"""The main job as a new user runs it: ``bash scripts/run.sh`` in a fresh clone, timed.

Usage (from the project root; the clone is of the committed HEAD)::

    python benchmarks/main_job.py                          # the default run
    python benchmarks/main_job.py --isa AVX2              # as an AVX2-only CPU runs it
    python benchmarks/main_job.py -- --env smoke           # anything after -- goes to run.sh

The clone gets the caller's environment (``CIFAR10_RAW_PATH``: where CIFAR-10 is).
``bash scripts/setup.sh`` is timed first (``setup_s``: the virtual environment and
every package, from pip's cache where it has them), then ``bash scripts/run.sh``
(``run_s``: it calls setup.sh again, a quick no-op, then ``kedro run``), so
``with_setup_s`` is at least what a user waits. ``--isa AVX2`` caps oneDNN's kernels
(``ONEDNN_MAX_CPU_ISA``) as an AVX2-only CPU runs them; ``precision: auto`` then
chooses float32, as it would there. The figures come from the run's own outputs: test
accuracy with and without TTA, and the epochs' seconds against the training plan's
estimate, as ``time_estimate.py`` defines them (``ratio``: actual / estimated).
They are printed and written, with the machine and the command, to ``--output``.
"""

# ruff: noqa: I001 - the package is imported first: it quiets TensorFlow's start-up
from __future__ import annotations

import cifar10_kedro  # noqa: F401

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import PROJECT, stamped, write  # noqa: E402
from time_estimate import against_the_estimate  # noqa: E402


def _timed(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    """Run ``command`` in ``cwd``, its output appended to ``log``; return its
    seconds, or stop with the log's end if it failed."""
    start = time.perf_counter()
    with log.open("a") as out:
        code = subprocess.call(command, cwd=cwd, env=env, stdout=out, stderr=out)
    seconds = time.perf_counter() - start
    if code:
        tail = log.read_text()[-3000:]
        raise SystemExit(f"{' '.join(command)} failed ({code}) in {cwd}:\n{tail}")
    return seconds


def _latest(clone: Path, dataset: str) -> Path:
    """The one saved version of a versioned dataset of a fresh clone's run."""
    versions = sorted(clone.glob(f"data/**/{dataset}/*/{dataset}"))
    if not versions:
        raise SystemExit(f"the run wrote no {dataset} under {clone / 'data'}")
    return versions[-1]


def figures(clone: Path) -> dict[str, Any]:
    """The test accuracy (plain, with TTA), and the epochs' own seconds against the
    training plan's estimate (as time_estimate.py compares them), from the outputs of
    the run in ``clone``."""
    metrics = json.loads(_latest(clone, "test_metrics.json").read_text())
    plan = json.loads(_latest(clone, "training_plan.json").read_text())
    with _latest(clone, "training_history.csv").open() as history:
        seconds = [float(row["seconds"]) for row in csv.DictReader(history)]
    result = {
        "test_accuracy": metrics["accuracy"],
        "test_accuracy_tta": metrics.get("tta", {}).get("accuracy"),
        "device": plan["device"],
        "precision": plan["precision"],
    }
    if plan["estimated_training_seconds"] is None:  # probe_steps: 0
        return result | {"epochs_run": len(seconds), "actual_training_s": sum(seconds)}
    return result | against_the_estimate(plan, np.asarray(seconds))


def main_job(source: Path, run_args: list[str]) -> dict[str, Any]:
    """Clone ``source``'s HEAD, time its set-up and ``bash scripts/run.sh run_args``
    (in this process's environment); return the times and the run's figures."""
    commit = subprocess.check_output(
        ["git", "rev-parse", "HEAD"], cwd=source, text=True
    ).strip()
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    for inherited in ("VIRTUAL_ENV", "TF_ENABLE_ONEDNN_OPTS"):
        env.pop(inherited, None)  # the clone's own environment and defaults
    with tempfile.TemporaryDirectory(prefix="main-job-") as tmp:
        clone = Path(tmp) / source.name
        subprocess.run(["git", "clone", "--quiet", str(source), str(clone)], check=True)
        log = Path(tmp) / "run.log"
        setup_s = _timed(["bash", "scripts/setup.sh"], clone, env, log)
        run_s = _timed(["bash", "scripts/run.sh", *run_args], clone, env, log)
        return {
            "commit": commit,
            "run_args": run_args,
            "setup_s": setup_s,
            "run_s": run_s,
            "with_setup_s": setup_s + run_s,
            **figures(clone),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--isa", help="cap oneDNN's kernels, e.g. AVX2")
    parser.add_argument("--project", type=Path, default=PROJECT, help="git repository")
    parser.add_argument("--output", type=Path, help="JSON file for the figures")
    parser.add_argument("run_args", nargs="*", help="after --: arguments of run.sh")
    args = parser.parse_args(argv)
    if args.isa:  # for the clone's run, and the machine() the JSON records
        os.environ["ONEDNN_MAX_CPU_ISA"] = args.isa
    result = main_job(args.project.resolve(), args.run_args)
    for key, value in result.items():
        print(
            f"{key:<22}{value:.4g}" if isinstance(value, float) else f"{key:<22}{value}"
        )
    write(args.output or stamped("main-job"), "main-job", result, script="main_job.py")


if __name__ == "__main__":
    main()
