"""Where a training epoch's time goes on this CPU, and what could take it back.

Usage (from the project root, after ``bash scripts/setup.sh``; the data_ingestion
pipeline run once)::

    python benchmarks/training_speed.py --profile         # per op, TF's profiler
    python benchmarks/training_speed.py --candidates      # every candidate, side by side
    python benchmarks/training_speed.py --candidates --isa AVX2   # as on an AVX2-only CPU

``--profile`` times a few training steps of the default network under TensorFlow's
profiler and sums the time of every op it ran (the XPlane trace, read with the
protobuf TensorFlow ships), by kind: convolutions, their two gradients, BatchNorm,
GELU, pooling, the optimizer, the rest; beside them, timed on their own, the input
pipeline (batches and their augmentation), validation and the checkpoint. Each is
given as seconds of one epoch of the default run and as its share.

``--candidates`` measures, each in a process of its own (so that settings read at
import take effect) and one after another on the same machine, the steady-state
training images/s of the default network under each candidate of ``CANDIDATES``:
TensorFlow's thread and oneDNN settings, XLA (``jit_compile``), the JAX backend,
GELU's tanh form, fused BatchNorm. ``--isa AVX2`` caps oneDNN at AVX2
(``ONEDNN_MAX_CPU_ISA``), the closest this machine comes to an AVX2-only CPU; the
figures then say so. The float32 bound is a large NumPy matmul on the same cores
(``inference_benchmark.gemm_gflop_s``, the inference benchmark's bound too).

Figures are printed and written to JSON (``--output``; by default under
``benchmarks/results/``), with the machine.
"""

# ruff: noqa: I001 - the package is imported first: it quiets TensorFlow's start-up
from __future__ import annotations

import cifar10_kedro  # noqa: F401

import argparse
import collections
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
from benchmark import (  # noqa: E402 - a sibling script
    _batches,
    ensure_arrays,
    load,
    print_figures,
    training_params,
    write,
)
from inference_benchmark import (  # noqa: E402 - a sibling script
    gemm_gflop_s,
    multiply_adds,
)

# name -> (environment of its process, options applied in it). The first is the
# reference every other is compared with.
CANDIDATES: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
    # Keras' own BatchNorm: the default until fit.fused_batchnorm (the name is kept so
    # that results files stay comparable).
    "tensorflow (default)": ({}, {}),
    "tensorflow, 1 inter-op thread": ({}, {"inter_op": 1}),
    # Eigen's kernels: what TensorFlow alone chooses on an AVX2-only CPU (the package
    # asks for oneDNN on every x86 CPU: hardware.use_onednn).
    "tensorflow, oneDNN off": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, {}),
    "tensorflow + XLA (jit_compile)": ({}, {"jit_compile": True}),
    "tensorflow, GELU tanh form": ({}, {"gelu_tanh": True}),
    "tensorflow, fused BatchNorm": ({}, {"fused_batchnorm": True}),
    "tensorflow, fused BatchNorm, 1 inter-op thread": (
        {},
        {"fused_batchnorm": True, "inter_op": 1},
    ),
    "tensorflow + XLA, GELU tanh form": ({}, {"jit_compile": True, "gelu_tanh": True}),
    "jax (XLA on the CPU)": ({"KERAS_BACKEND": "jax"}, {}),
    "jax, GELU tanh form": ({"KERAS_BACKEND": "jax"}, {"gelu_tanh": True}),
    # Needs torch (not a dependency: pip install torch==2.13.0 for the CPU build).
    "torch (oneDNN, channels-last)": ({"KERAS_BACKEND": "torch"}, {}),
}

# --profile: the op kinds, by the first pattern found in an op's "name:type".
KINDS = (
    ("convolution, gradient of the input", ("Conv2DBackpropInput",)),
    ("convolution, gradient of the kernel", ("Conv2DBackpropFilter",)),
    ("convolution, forward", ("Conv2D",)),
    ("optimizer (SGD, lookahead, weight decay)", ("optimizer", "sgd", "SGD", "Assign")),
    ("BatchNorm and its gradient", ("batch_normalization", "BatchNorm", "moments")),
    ("GELU and its gradient", ("Gelu", "gelu", "activation")),
    ("max pooling and its gradient", ("MaxPool", "max_pool")),
    ("loss, metrics, head", ("loss", "compile_", "Softmax", "dense", "MatMul")),
)


def _params(precision: str) -> dict[str, Any]:
    return {"model_training": {"model": {"precision": precision}}}


def _setup(
    env: str, precision: str, steps: int, options: dict[str, Any]
) -> tuple[Any, ...]:
    """The default network compiled as ``train_model`` would, its batches and config."""
    import keras  # noqa: PLC0415 - after the process's environment is set

    from cifar10_kedro.pipelines.model_training.nodes import (  # noqa: PLC0415
        build_model,
        compile_model,
    )

    if options.get("inter_op") and keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        tf.config.threading.set_inter_op_parallelism_threads(options["inter_op"])
    config = training_params(env, _params(precision))
    x, y = load(env, {}, "x_train", "y_train")
    index = np.arange(config.fit.batch_size * (steps + 1)) % len(x)
    x, y = x[index], y[index]
    model = build_model(config.model, config.seed, x)
    if options.get("gelu_tanh"):
        _gelu_tanh(model)
    model = compile_model(model, config.compile, config.fit, y)
    if options.get("jit_compile"):
        model.jit_compile = True
    return model, _batches(config, x, y, model), config


def _gelu_tanh(model: Any) -> None:
    import keras  # noqa: PLC0415

    for layer in model.layers:
        if isinstance(layer, keras.layers.Activation) and "gelu" in str(
            layer.activation
        ):
            layer.activation = lambda x: keras.activations.gelu(x, approximate=True)


def steady_rate(model: Any, batches: Any, steps: int) -> tuple[float, list[float]]:
    """Training images/s over ``steps`` steps after one warm-up step (tracing), each
    step a batch as ``train_model`` makes it and one ``train_on_batch``."""
    times = []
    for step in range(steps + 1):
        start = time.perf_counter()
        images, labels = batches.batch(0, step)
        model.train_on_batch(images, labels)
        times.append(time.perf_counter() - start)
    timed = times[1:]
    return batches.batch_size * len(timed) / sum(timed), timed


def model_flops(model: Any) -> float:
    """Floating-point operations of a training step per image: 3 x 2 x the forward
    multiply-adds (``inference_benchmark.multiply_adds``: forward, two gradients)."""
    return 3 * 2 * multiply_adds(model)


def one(env: str, name: str, precision: str, steps: int) -> dict[str, Any]:
    """Measure candidate ``name`` in this process."""
    import keras  # noqa: PLC0415

    from cifar10_kedro.pipelines.model_training.fused import (  # noqa: PLC0415
        fused_batchnorm,
    )

    _, options = CANDIDATES[name]
    model, batches, _ = _setup(env, precision, steps, options)
    with fused_batchnorm(model, options.get("fused_batchnorm", False)):
        rate, times = steady_rate(model, batches, steps)
    return {
        "candidate": name,
        "backend": keras.backend.backend(),
        "train_img_s": rate,
        "step_s": times,
        "gflop_s": rate * model_flops(model) / 1e9,
    }


def candidates(
    env: str, precision: str, steps: int, isa: str | None, names: list[str]
) -> dict:
    bound = gemm_gflop_s(isa=isa)
    rows = []
    for name in names:
        environment, _ = CANDIDATES[name]
        variables = {**os.environ, **environment}
        if isa:
            variables["ONEDNN_MAX_CPU_ISA"] = isa
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            args = [sys.executable, __file__, "--one", name, "--steps", str(steps)]
            args += ["--precision", precision, "--env", env, "--output", out.name]
            done = subprocess.run(
                args, check=False, env=variables, capture_output=True, text=True
            )
            if done.returncode:
                row = {"candidate": name, "error": done.stderr[-2000:]}
            else:
                row = json.loads(Path(out.name).read_text())
        if "gflop_s" in row:
            row["share_of_matmul_bound"] = row["gflop_s"] / bound
        rows.append(row)
        shown = {k: v for k, v in row.items() if k not in ("step_s", "error")}
        print_figures(shown | ({"error": "yes"} if "error" in row else {}))
        print(flush=True)
    return {
        "precision": precision,
        "onednn_max_cpu_isa": isa,
        "steps": steps,
        "matmul_gflop_s": bound,
        "rows": rows,
    }


def _kind(name: str) -> str:
    for kind, patterns in KINDS:
        if any(p in name for p in patterns):
            return kind
    return "other (element-wise, copies, casts)"


def op_times(log_dir: Path) -> tuple[collections.Counter, collections.Counter]:
    """Seconds of every op kind, and of every op type, in the XPlane trace under
    ``log_dir``."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: PLC0415

    totals: collections.Counter = collections.Counter()
    types: collections.Counter = collections.Counter()
    for path in log_dir.rglob("*.xplane.pb"):
        space = xplane_pb2.XSpace()
        space.ParseFromString(path.read_bytes())
        for plane in space.planes:
            for line in plane.lines:
                if not line.name.startswith("tf_Compute"):
                    continue  # the executor's threads: one event an op
                for event in line.events:
                    name = plane.event_metadata[event.metadata_id].name
                    if ":" in name.replace("::", ""):  # "scope/op:Type" alone
                        totals[_kind(name)] += event.duration_ps / 1e12
                        types[name.rpartition(":")[2]] += event.duration_ps / 1e12
    return totals, types


def profile(env: str, precision: str, steps: int) -> dict[str, Any]:
    import tensorflow as tf  # noqa: PLC0415

    from cifar10_kedro.pipelines.model_training.batches import (  # noqa: PLC0415
        validation_inputs,
    )
    from cifar10_kedro.pipelines.model_training.fused import (  # noqa: PLC0415
        fused_batchnorm,
    )
    from cifar10_kedro.pipelines.model_training.nodes import (  # noqa: PLC0415
        steps_per_epoch,
    )

    options = {"fused_batchnorm": training_params(env, {}).fit.fused_batchnorm}
    model, batches, config = _setup(env, precision, steps, options)
    x_train, x_val, y_val = load(env, {}, "x_train", "x_val", "y_val")
    epoch_steps = steps_per_epoch(len(x_train), config.fit)
    # The training steps as train_model runs them (validation and the input do not
    # train, so the fused kernel changes nothing there).
    with fused_batchnorm(model, options["fused_batchnorm"]):
        steady_rate(model, batches, 1)  # tracing
        with tempfile.TemporaryDirectory() as log:
            tf.profiler.experimental.start(log)
            start = time.perf_counter()
            for step in range(steps):
                model.train_on_batch(*batches.batch(0, step))
            step_s = (time.perf_counter() - start) / steps
            tf.profiler.experimental.stop()
            ops, types = op_times(Path(log))
    # Ops overlap on the executor's threads: each kind's share of the summed op time,
    # applied to the measured step.
    summed = sum(ops.values())
    rows = [
        {"part": kind, "epoch_s": epoch_steps * step_s * seconds / summed}
        for kind, seconds in ops.most_common()
    ]
    start = time.perf_counter()
    for step in range(steps):
        batches.batch(0, step)
    input_s = (time.perf_counter() - start) / steps * epoch_steps
    labels = np.eye(10, dtype="float32")[y_val]
    # Under TensorFlow (the profiler's backend): a tf.data pipeline, as fit gets it.
    validation = validation_inputs(x_val, labels, config.fit.batch_size)
    model.evaluate(validation, verbose=0)  # tracing
    start = time.perf_counter()
    model.evaluate(validation, verbose=0)
    validation_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        model.save(Path(folder) / "checkpoint.keras")
        checkpoint_s = time.perf_counter() - start
    rows += [
        {"part": "input pipeline (batches, flips, shifts)", "epoch_s": input_s},
        {"part": "validation", "epoch_s": validation_s},
        {"part": "checkpoint (model saved)", "epoch_s": checkpoint_s},
    ]
    total = sum(r["epoch_s"] for r in rows)
    op_types = [
        {"op": op, "epoch_s": epoch_steps * step_s * seconds / summed}
        for op, seconds in types.most_common()
    ]
    for row in rows:
        row["share"] = row["epoch_s"] / total
        print(f"{row['part']:>45}: {row['epoch_s']:7.1f} s  {row['share']:6.1%}")
    return {
        "precision": precision,
        "steps_profiled": steps,
        "train_step_s": step_s,
        "steps_per_epoch": epoch_steps,
        "epoch_s": total,
        "rows": rows,
        "op_types": op_types,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--profile", action="store_true", help="where an epoch goes")
    mode.add_argument("--candidates", nargs="*", metavar="NAME", help="all if none")
    mode.add_argument("--one", metavar="NAME", help=argparse.SUPPRESS)
    parser.add_argument("--env", default="base", help="base, smoke, ...")
    parser.add_argument("--precision", default="float32", help="the dtype policy")
    parser.add_argument("--steps", type=int, default=6, help="timed training steps")
    parser.add_argument("--isa", help="cap oneDNN at this ISA, e.g. AVX2")
    parser.add_argument("--output", type=Path, help="JSON file for the figures")
    args = parser.parse_args(argv)
    if args.one:
        figures = one(args.env, args.one, args.precision, args.steps)
        Path(args.output).write_text(json.dumps(figures))
        return
    if args.profile and args.isa and os.environ.get("ONEDNN_MAX_CPU_ISA") != args.isa:
        # oneDNN reads its cap once, at its first kernel: set it before that.
        env = {**os.environ, "ONEDNN_MAX_CPU_ISA": args.isa}
        os.execve(sys.executable, [sys.executable, __file__, *sys.argv[1:]], env)
    names = args.candidates or list(CANDIDATES)
    unknown = sorted(set(names) - set(CANDIDATES))
    if unknown:
        parser.error(
            f"unknown candidates {unknown}; expected some of {list(CANDIDATES)}"
        )
    ensure_arrays(args.env, {})
    if args.profile:
        result, name = profile(args.env, args.precision, args.steps), "profile"
    else:
        result = candidates(args.env, args.precision, args.steps, args.isa, names)
        name = "candidates"
    result |= {"env": args.env, "onednn_max_cpu_isa": args.isa}
    write(args.output, f"training-speed-{name}", result, script="training_speed.py")


if __name__ == "__main__":
    main()
