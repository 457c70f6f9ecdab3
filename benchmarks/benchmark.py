"""Speed, memory and accuracy of a configuration environment, through the real pipelines.

Usage (from the project root, after ``bash scripts/setup.sh``)::

    python benchmarks/benchmark.py                      # conf/base, the default run
    python benchmarks/benchmark.py --env notebook --params model_training.epochs=3
    python benchmarks/benchmark.py --compare --minutes 10   # notebook vs default, same budget
    python benchmarks/benchmark.py --sweep 24/48,96,192 w/64,128,256   # w: whitening stem

For one environment it prints: training images/s, input-pipeline images/s (shuffled uint8
batching alone, and with the augmentation layers), seconds per epoch, test-set inference
images/s, peak memory (RSS) and the final validation and test accuracy. ``--compare`` trains the
``notebook`` configuration and the default for the same wall-clock budget each (epochs chosen
from a measured step rate) and prints both in one table. Needs the raw data (see README).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from kedro.framework.session import KedroSession  # noqa: E402
from kedro.framework.startup import bootstrap_project  # noqa: E402

from cifar10_kedro.pipelines.model_training.nodes import (  # noqa: E402
    build_model,
    fit_inputs,
)

PROJECT = Path(__file__).resolve().parents[1]


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """Turn ``a.b=1`` strings into nested runtime parameters, as ``kedro run --params`` does."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            parsed: Any = int(value)
        except ValueError:
            try:
                parsed = float(value)
            except ValueError:
                parsed = value
        *parents, leaf = key.split(".")
        node = params
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = parsed
    return params


def with_epochs(params: dict[str, Any], epochs: int) -> dict[str, Any]:
    training = {**params.get("model_training", {}), "epochs": epochs}
    return {**params, "model_training": training}


def session(env: str, params: dict[str, Any]) -> KedroSession:
    bootstrap_project(Path.cwd())
    return KedroSession.create(
        project_path=Path.cwd(),
        env=None if env == "base" else env,
        runtime_params=params,
    )


def ensure_arrays(env: str, params: dict[str, Any]) -> None:
    """Run data_ingestion once if this environment has no persisted arrays yet."""
    with session(env, params) as s:
        if s.load_context().catalog.exists("x_train"):
            return
    with session(env, params) as s:
        s.run(pipeline_names=["data_ingestion"])


def input_pipeline_rate(
    x: np.ndarray, y: np.ndarray, params: dict[str, Any], batches: int
) -> tuple[float, float]:
    """Return images/s of shuffled uint8 batching, and of batching plus augmentation."""
    batch_size = params["batch_size"]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    steps = min(batches, len(x) // batch_size)
    start = time.perf_counter()
    for step in range(steps):
        index = order[step * batch_size : (step + 1) * batch_size]
        _ = x[index], y[index]
    batching = steps * batch_size / (time.perf_counter() - start)

    augment = build_model(params, x, y).get_layer("augmentation")
    augment(x[:batch_size], training=True)  # build and trace once
    start = time.perf_counter()
    for step in range(steps):
        index = order[step * batch_size : (step + 1) * batch_size]
        keras.ops.convert_to_numpy(augment(x[index], training=True))
    augmented = steps * batch_size / (time.perf_counter() - start)
    return batching, augmented


class BatchClock(keras.callbacks.Callback):
    """Times the end of every training batch."""

    def __init__(self) -> None:
        super().__init__()
        self.ends: list[float] = []

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.ends.append(time.perf_counter())


def training_rate(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    params: dict[str, Any],
    steps: int,
) -> float:
    """Return training images/s of ``model`` (built from ``params``) in steady state.

    Fed as ``train_model`` feeds it; timed from the end of the first batch (which
    includes tracing) to the end of the last of ``steps`` full batches (at least 2).
    """
    labels = (
        keras.utils.to_categorical(y, 10)
        if params["loss"] == "categorical_crossentropy"
        else y
    )
    steps = max(2, steps)
    # Cycles through a set smaller than steps * batch_size: only the arithmetic is timed.
    index = np.arange(params["batch_size"] * steps) % len(x)
    clock = BatchClock()
    model.fit(
        **fit_inputs(x[index], labels[index], params["batch_size"]),
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[clock],
    )
    return (steps - 1) * params["batch_size"] / (clock.ends[-1] - clock.ends[0])


def sweep(env: str, specs: list[str], extra: dict[str, Any]) -> None:
    """Print fast_cnn training images/s for each ``stem/w1,w2,...`` spec, both precisions."""
    ensure_arrays(env, extra)
    with session(env, extra) as s:
        context = s.load_context()
        base = context.params["model_training"]
        x, y = context.catalog.load("x_train"), context.catalog.load("y_train")
    print(f"{'stem/widths':<20}{'precision':>16}{'params':>12}{'train img/s':>14}")
    for spec in specs:
        stem, _, widths = spec.partition("/")
        options = {
            **({"stem": "whitening"} if stem == "w" else {"stem_width": int(stem)}),
            "widths": [int(w) for w in widths.split(",")],
        }
        for precision in ("float32", "mixed_bfloat16"):
            params = {
                **base,
                "architecture": "fast_cnn",
                "precision": precision,
                "architectures": {**base["architectures"], "fast_cnn": options},
            }
            model = build_model(params, x, y)
            rate = training_rate(
                model, x, y, params, steps=max(6, 6144 // params["batch_size"])
            )
            count = model.count_params()
            print(f"{spec:<20}{precision:>16}{count:>12,}{rate:>14,.0f}", flush=True)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_config(
    env: str, params: dict[str, Any], measure_input: bool = True
) -> dict[str, Any]:
    """Train and report through the pipelines; return the measured figures."""
    ensure_arrays(env, params)
    with session(env, params) as s:
        context = s.load_context()
        catalog = context.catalog
        train_params = context.params["model_training"]
        x_train, y_train = catalog.load("x_train"), catalog.load("y_train")
    figures: dict[str, Any] = {"env": env, "train_images": len(x_train)}
    if measure_input:
        figures["input_img_s"], figures["input_aug_img_s"] = input_pipeline_rate(
            x_train, y_train, train_params, batches=40
        )
    start = time.perf_counter()
    with session(env, params) as s:
        s.run(pipeline_names=["model_training", "reporting"])
    figures["train_and_report_s"] = time.perf_counter() - start
    with session(env, params) as s:
        catalog = s.load_context().catalog
        history = catalog.load("training_history")
        metrics = catalog.load("test_metrics")
        model = catalog.load("trained_model")
        x_test = catalog.load("x_test")
    seconds = history["seconds"].to_numpy()
    steady = np.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    model.predict(x_test[:1000], batch_size=1000, verbose=0)
    start = time.perf_counter()
    model.predict(x_test, batch_size=1000, verbose=0)
    figures.update(
        epochs=len(history),
        seconds_per_epoch=float(steady),
        train_img_s=len(x_train) / float(steady),
        inference_img_s=len(x_test) / (time.perf_counter() - start),
        best_val_accuracy=float(history["val_accuracy"].max()),
        test_accuracy=metrics["accuracy"],
        test_accuracy_tta=metrics.get("tta", {}).get("accuracy"),
        peak_rss_gib=peak_rss_gib(),
    )
    return figures


def print_figures(figures: dict[str, Any]) -> None:
    for key, value in figures.items():
        shown = (
            f"{value:,.4f}"
            if isinstance(value, float) and value < 10  # noqa: PLR2004
            else (f"{value:,.0f}" if isinstance(value, float) else value)
        )
        print(f"{key:>22}: {shown}")


def compare(minutes: float, extra: dict[str, Any]) -> None:
    """Train notebook and default for the same wall-clock budget; print both accuracies."""
    rows = []
    for env in ("notebook", "base"):
        ensure_arrays(env, extra)
        with session(env, extra) as s:
            context = s.load_context()
            train_params = context.params["model_training"]
            x, y = context.catalog.load("x_train"), context.catalog.load("y_train")
        rate = training_rate(
            build_model(train_params, x, y),
            x,
            y,
            train_params,
            steps=max(6, 6144 // train_params["batch_size"]),
        )
        # Validation adds about a tenth of an epoch; keep at least one epoch.
        epochs = max(1, int(minutes * 60 / (len(x) / rate * 1.1)))
        print(
            f"[{env}] measured {rate:,.0f} img/s -> {epochs} epochs in {minutes} min",
            flush=True,
        )
        params = with_epochs(extra, epochs)
        figures = run_config(env, params, measure_input=False)
        rows.append((env, epochs, figures))
    print(
        f"\nSame budget: {minutes} minutes of training each ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Keras {keras.__version__} on {keras.backend.backend()})"
    )
    print(
        f"{'config':<10}{'epochs':>8}{'train s':>10}{'val acc':>10}{'test acc':>10}{'test TTA':>10}"
    )
    for env, epochs, f in rows:
        tta = f["test_accuracy_tta"]
        print(
            f"{env:<10}{epochs:>8}{f['train_and_report_s']:>10.0f}{f['best_val_accuracy']:>10.4f}"
            f"{f['test_accuracy']:>10.4f}{(f'{tta:.4f}' if tta is not None else '-'):>10}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--env",
        default="base",
        help="configuration environment (base, notebook, smoke, gpu)",
    )
    parser.add_argument(
        "--params", nargs="*", default=[], help="runtime parameters, key=value"
    )
    parser.add_argument(
        "--compare", action="store_true", help="notebook vs default, same budget"
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=10.0,
        help="training budget per config in --compare",
    )
    parser.add_argument(
        "--sweep",
        nargs="+",
        metavar="STEM/W1,W2,W3",
        help="only measure fast_cnn training speed for these widths, e.g. 24/48,96,192",
    )
    parser.add_argument(
        "--project",
        type=Path,
        default=PROJECT,
        help="the Kedro project (default: this one)",
    )
    args = parser.parse_args(argv)
    # Sessions use the working directory as the project, as `kedro run` does.
    os.chdir(args.project)
    extra = parse_params(args.params)
    if args.sweep:
        sweep(args.env, args.sweep, extra)
        return
    if args.compare:
        compare(args.minutes, extra)
        return
    print(
        f"Keras {keras.__version__}, backend {keras.backend.backend()}, {os.cpu_count()} CPUs",
        flush=True,
    )
    start = time.perf_counter()
    figures = run_config(args.env, extra)
    figures["wall_s"] = time.perf_counter() - start
    print_figures(figures)


if __name__ == "__main__":
    sys.exit(main())
