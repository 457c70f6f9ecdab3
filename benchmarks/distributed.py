"""Training images/s on one device against data parallelism (Keras 3 on JAX).

Usage (from the project root)::

    python benchmarks/distributed.py                      # conf/base's model, CPU or GPU
    python benchmarks/distributed.py --processes 1 2 4 --steps 8
    python benchmarks/distributed.py --env smoke --virtual-devices 0
    python benchmarks/distributed.py --env smoke --steps 10 --repeats 2  # docs/distributed.md's

Each configuration runs in fresh processes (``KERAS_BACKEND=jax``), trains the
environment's model on its global batch size (``model_training.fit.batch_size``) for
``--steps`` steps, fed as ``train_model`` feeds it (``TrainingBatches``, each process
its rows of every batch), and times the steps after the first (which includes
tracing): ``train_img_s`` = global batch x timed steps / seconds, as process 0 sees
them. The configurations:

* ``1 process``: one device (``mode: none``);
* ``N processes``: ``mode: multi_process``, N processes on this machine on loopback,
  as ``kedro launch --processes N`` starts them (one device each on a CPU);
* ``1 process, N devices``: ``mode: data_parallel`` over every device of the process:
  the GPUs of the machine, or ``--virtual-devices`` CPU devices
  (``--xla_force_host_platform_device_count``).

The images are random uint8 arrays (speed does not depend on them). On a CPU, every
process shares the same cores: more processes show the cost of data parallelism, not
a speed-up. With ``--repeats`` the configurations take turns that many times (a
change in the load of a shared machine falls on all of them); each row keeps every
repeat's figure and their median. The figures, the machine, its load and the command
go to a JSON file (``--output``, by default ``benchmarks/results/distributed.json``).
"""

# ruff: noqa: I001 - the package is imported first: it quiets TensorFlow's start-up
from __future__ import annotations

import cifar10_kedro  # noqa: F401

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT / "benchmarks" / "results"
MARK = "RESULT "


def _parameters(env: str | None, overrides: list[str]) -> dict[str, Any]:
    from omegaconf import OmegaConf  # noqa: PLC0415

    from cifar10_kedro import settings  # noqa: PLC0415

    runtime = OmegaConf.to_container(OmegaConf.from_dotlist(overrides))
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(PROJECT / "conf"),
        env=env,
        runtime_params=runtime,
        **settings.CONFIG_LOADER_ARGS,
    )
    return loader["parameters"]["model_training"]


def worker(args: argparse.Namespace) -> None:
    """One process of a configuration: train ``args.steps`` steps, print the times."""
    import keras  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from cifar10_kedro.pipelines.model_training import distribution  # noqa: PLC0415
    from cifar10_kedro.pipelines.model_training.batches import (  # noqa: PLC0415
        TrainingBatches,
    )
    from cifar10_kedro.pipelines.model_training.nodes import (  # noqa: PLC0415
        build_model,
        compile_model,
    )
    from cifar10_kedro.pipelines.model_training.params import (  # noqa: PLC0415
        DistributionParams,
        ModelTrainingParams,
    )

    params = ModelTrainingParams.model_validate(_parameters(args.env, args.params))
    topology = distribution.configure(DistributionParams(mode=args.mode))
    batch = params.fit.batch_size
    images = batch * args.steps
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8)
    y = np.arange(images, dtype=np.uint8) % 10
    model = compile_model(
        build_model(params.model, params.seed, x), params.compile, params.fit, y
    )
    one_hot = isinstance(model.loss, keras.losses.CategoricalCrossentropy)
    batches = TrainingBatches(
        x,
        keras.utils.to_categorical(y, 10) if one_hot else y,
        batch_size=batch,
        seed=params.seed,
        augmentation=params.fit.augmentation,
        drop_remainder=True,
        shard=distribution.batch_shard(),
    )

    class Clock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.started = 0.0
            self.ends: list[float] = []

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.started = time.perf_counter()

        def on_train_batch_end(self, step: int, logs: dict | None = None) -> None:
            float(logs["loss"])  # wait for the step itself, not its dispatch
            self.ends.append(time.perf_counter())

    clock = Clock()
    with distribution.scope():
        model.fit(
            **batches.fit_inputs(0, 1),
            epochs=1,
            verbose=0,
            shuffle=False,
            callbacks=[clock],
        )
    seconds = clock.ends[-1] - clock.ends[0]
    timed = len(clock.ends) - 1
    print(
        MARK
        + json.dumps(
            {
                "process": topology.process_index,
                "processes": topology.process_count,
                "devices": topology.devices,
                "local_devices": _local_devices(),
                "platform": _platform(),
                "global_batch": batch,
                "timed_steps": timed,
                "seconds": seconds,
                "train_img_s": timed * batch / seconds,
                "first_step_s": clock.ends[0] - clock.started,
            }
        ),
        flush=True,
    )


def _platform() -> str:
    import jax  # noqa: PLC0415

    return jax.devices()[0].platform


def _local_devices() -> int:
    import jax  # noqa: PLC0415

    return jax.local_device_count()


def _run(
    args: argparse.Namespace,
    mode: str,
    processes: int,
    virtual_devices: int = 0,
    gpus: int = 0,
) -> dict[str, Any]:
    """Run one configuration in fresh processes; return process 0's figures.

    With ``gpus`` (the GPUs of the machine) and several processes, each process gets
    its own ``gpus // processes`` of them (``CUDA_VISIBLE_DEVICES``).
    """
    from cifar10_kedro.launch import (  # noqa: PLC0415
        free_port,
        process_environment,
    )

    command = [sys.executable, __file__, "--worker", "--mode", mode]
    command += ["--steps", str(args.steps)]
    if args.params:
        command += ["--params", *args.params]
    if args.env:
        command += ["--env", args.env]
    coordinator = f"127.0.0.1:{free_port()}"
    started = time.perf_counter()
    children = []
    for index in range(processes):
        env = (
            process_environment(index, processes, coordinator)
            if mode == "multi_process"
            else {**os.environ, "KERAS_BACKEND": "jax"}
        )
        if virtual_devices:
            env["XLA_FLAGS"] = (
                f"--xla_force_host_platform_device_count={virtual_devices}"
            )
            env["JAX_PLATFORMS"] = "cpu"
        if gpus and processes > 1:
            each = gpus // processes
            env["CUDA_VISIBLE_DEVICES"] = ",".join(
                str(gpu) for gpu in range(index * each, (index + 1) * each)
            )
        children.append(
            subprocess.Popen(
                command,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = []
    try:
        for child in children:
            outputs.append(child.communicate(timeout=args.timeout)[0])
    finally:
        for child in children:  # stopped by pid if one hung
            if child.poll() is None:
                child.kill()
                child.wait()
    for child, output in zip(children, outputs, strict=True):
        if child.returncode != 0:
            raise RuntimeError(f"A benchmark process failed:\n{output[-4000:]}")
    lines = [
        json.loads(line.removeprefix(MARK))
        for output in outputs
        for line in output.splitlines()
        if line.startswith(MARK)
    ]
    first = next(line for line in lines if line["process"] == 0)
    return {
        **first,
        "mode": mode,
        "wall_s": time.perf_counter() - started,
        "load_average_1min": os.getloadavg()[0],
    }


def _machine(first: dict[str, Any]) -> dict[str, Any]:
    """What the figures were measured on (``first``: the one-process row)."""
    import jax  # noqa: PLC0415
    import keras  # noqa: PLC0415

    from cifar10_kedro.hardware import describe_cpu  # noqa: PLC0415

    return {
        "cpu": describe_cpu()["cpu"],
        "cpus": os.cpu_count(),
        "accelerator": first["platform"],
        "accelerator_devices": first["local_devices"]
        if first["platform"] != "cpu"
        else 0,
        "python": platform.python_version(),
        "keras": keras.__version__,
        "jax": jax.__version__,
        "backend": "jax",
    }


def _configurations(
    args: argparse.Namespace, gpus: int
) -> tuple[list[tuple[str, int, int, int]], list[str]]:
    """Return what to measure, (mode, processes, virtual devices, GPUs) each, and
    what cannot be measured on this machine."""
    skipped = []
    # (mode, processes, virtual devices, gpus) of each configuration.
    configurations = [("none", 1, 0, 0)]
    for count in sorted(set(args.processes) - {1}):
        if gpus and gpus < count:
            skipped.append(f"{count} processes: {gpus} GPU(s), one at least a process")
            continue
        configurations.append(("multi_process", count, 0, gpus))
    if not gpus and args.virtual_devices > 1:
        configurations.append(("data_parallel", 1, args.virtual_devices, 0))
    elif gpus > 1:  # every GPU of the machine in one process
        configurations.append(("data_parallel", 1, 0, 0))
    elif gpus == 1:
        skipped.append("1 process over several GPUs: this machine has one")
    if not gpus:
        skipped.append("GPUs: this machine has none (no GPU images/s, no GPU scaling)")
    return configurations, skipped


def _measure(
    args: argparse.Namespace,
    first: dict[str, Any],
    configurations: list[tuple[str, int, int, int]],
) -> list[dict[str, Any]]:
    """Measure each configuration ``args.repeats`` times (``first``: the first
    run of the first); return one row each."""
    # The configurations take turns, --repeats times, so that a change in the load of
    # a shared machine falls on all of them; each row keeps every repeat's figure and
    # the median.
    measured: list[list[dict[str, Any]]] = [[] for _ in configurations]
    for repeat in range(args.repeats):
        for index, (mode, count, virtual, gpu_count) in enumerate(configurations):
            if repeat == 0 and index == 0:
                row = first
            else:
                row = _run(args, mode, count, virtual, gpus=gpu_count)
            row["repeat"] = repeat
            measured[index].append(row)
            _show(row)
    rows = []
    for runs in measured:
        rates = [run["train_img_s"] for run in runs]
        rows.append(
            {
                **runs[len(runs) // 2],
                "train_img_s": statistics.median(rates),
                "train_img_s_repeats": rates,
                "load_average_1min": [run["load_average_1min"] for run in runs],
            }
        )
        del rows[-1]["repeat"]
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None, help="configuration environment")
    parser.add_argument(
        "--params", nargs="*", default=[], help="overrides, e.g. model_training.x=1"
    )
    parser.add_argument("--steps", type=int, default=6, help="steps a configuration")
    parser.add_argument(
        "--processes", type=int, nargs="+", default=[1, 2], help="process counts"
    )
    parser.add_argument(
        "--virtual-devices",
        type=int,
        default=2,
        help="on a CPU, also 1 process over this many virtual devices (0: not)",
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="measure every configuration this often"
    )
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--output", type=Path, default=RESULTS / "distributed.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="none", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = "jax"
    if args.worker:
        worker(args)
        return
    if 1 not in args.processes:
        parser.error("--processes must include 1 (the one-device reference)")
    load_before = os.getloadavg()
    first = _run(args, "none", 1)  # one device: the reference
    gpus = first["local_devices"] if first["platform"] != "cpu" else 0
    configurations, skipped = _configurations(args, gpus)
    rows = _measure(args, first, configurations)
    for row in rows:
        row["relative_to_1_process"] = row["train_img_s"] / rows[0]["train_img_s"]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "command": "python benchmarks/distributed.py " + " ".join(sys.argv[1:]),
        "date": stamp,
        "machine": _machine(first),
        "repeats": args.repeats,
        # Other jobs share the machine: its load (1, 5, 15 min) around the runs.
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "note": (
            "On a CPU all processes and virtual devices share the same cores: no "
            "hardware is added, so the rows compare how well each configuration "
            "uses those cores (and what its collectives cost), not the scaling of "
            "data parallelism over more devices."
            if not gpus
            else "Each process or device trains its share of the same global batch."
        ),
        "rows": rows,
        "not_measured": skipped,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=1) + "\n")
    print(f"\nwritten to {args.output}", flush=True)


def _show(row: dict[str, Any]) -> None:
    what = (
        f"{row['processes']} process(es), {row['devices']} {row['platform']} "
        f"device(s), {row['mode']}"
    )
    print(
        f"{what:>45}: {row['train_img_s']:8,.0f} images/s (global batch "
        f"{row['global_batch']}, {row['timed_steps']} steps timed, "
        f"first step {row['first_step_s']:.1f} s)",
        flush=True,
    )


if __name__ == "__main__":
    main()
