"""Speed, memory and accuracy of a configuration, through the real pipelines.

Usage (from the project root, after ``bash scripts/setup.sh``)::

    python benchmarks/benchmark.py                       # conf/base, the default run
    python benchmarks/benchmark.py --seeds 5             # 5 runs: mean and std
    python benchmarks/benchmark.py --env notebook --params model_training.fit.epochs=3
    python benchmarks/benchmark.py --compare --minutes 10   # notebook vs default
    python benchmarks/benchmark.py --ablation --epochs 4     # each ingredient off in turn
    python benchmarks/benchmark.py --ablation --speed         # ... its training speed only
    python benchmarks/benchmark.py --sweep 64,128,256 64,256,256   # training speed only
    python benchmarks/benchmark.py --recipes   # cheaper recipes; one chosen on validation
    python benchmarks/benchmark.py --recipes --recipe-seeds 42 0 1   # ... on 3 seeds' means

Every figure has one definition, here:

* ``train_img_s``: training images per second in steady state, timed over full
  batches as ``train_model`` feeds them (from the end of the first batch, which
  includes tracing, to the end of the last); ``--compare`` and ``--sweep`` use it too;
* ``epoch_s``: the median seconds of an epoch in the run's history (training and
  validation, as ``train_model`` logs them);
* ``input_img_s``: images per second of the input pipeline alone (the batches
  ``train_model`` feeds ``fit``, with their augmentation);
* ``inference_img_s``: test images per second of ``model.predict`` (the reporting
  batch size), the trained model as saved;
* ``best_val_accuracy``: the validation accuracy of the epoch whose model is returned
  (the history's ``best`` row); ``val_accuracy_tta`` is the configured test-time
  augmentation's validation accuracy (the ``tta_selection`` pipeline, run after
  ``reporting``), ``test_accuracy(_tta)``, ``test_ece`` and
  ``test_ece_temperature_scaled`` (the plain predictions with the temperature fitted on
  validation) come from the run's test metrics.

Each run prints its figures and writes them, with the machine and the command, to a
JSON file (``--output``; by default under ``benchmarks/results/``).
"""

# ruff: noqa: I001 - the package is imported first: it quiets TensorFlow's start-up
from __future__ import annotations

import cifar10_kedro  # noqa: F401

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project


from cifar10_kedro.hardware import describe_cpu, onednn_isa_cap, tensorflow_kernels
from cifar10_kedro.pipelines.model_training.batches import TrainingBatches
from cifar10_kedro.pipelines.model_training.fused import fused_batchnorm
from cifar10_kedro.pipelines.model_training.nodes import build_model, compile_model
from cifar10_kedro.pipelines.model_training.params import ModelTrainingParams
from cifar10_kedro.pipelines.reporting.params import ReportingParams

PROJECT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT / "benchmarks" / "results"

# --ablation: each ingredient of the recipe, and the model_training parameters that
# switch it off.
INGREDIENTS: dict[str, dict[str, Any]] = {
    "whitening stem (3x3 conv instead)": {"model": {"fast_cnn": {"stem": "conv"}}},
    "whitening bias training (frozen)": {
        "compile": {"optimizer": {"whitening_bias_epochs": 0}}
    },
    "dirac initialisation": {"model": {"fast_cnn": {"init": "default"}}},
    "GELU (ReLU instead)": {"model": {"fast_cnn": {"activation": "relu"}}},
    "BatchNorm momentum 0.6, no scale (Keras' defaults)": {
        "model": {
            "fast_cnn": {
                "batchnorm": {"momentum": 0.99, "epsilon": 0.001, "scale": True}
            }
        }
    },
    "head scale 1/9": {"model": {"fast_cnn": {"head_scale": 1.0}}},
    "BatchNorm bias lr x64": {
        "compile": {"optimizer": {"batchnorm_bias_lr_scale": 1.0}}
    },
    "lookahead": {"compile": {"optimizer": {"lookahead": None}}},
    "label smoothing 0.2": {"compile": {"label_smoothing": 0.0}},
    "alternating flips (random instead)": {"fit": {"augmentation": {"flip": "random"}}},
    "translation 2 px": {"fit": {"augmentation": {"translate": 0}}},
}

# --recipes: ways to spend less training time on the same network and schedule, each
# the model_training parameters it sets (in full, so that a row stays the same recipe
# whatever the default is). The first is the reference the others are held to.
_HALF_AT_24 = [{"size": 24, "share": 0.5}]
RECIPES: dict[str, dict[str, Any]] = {
    "full size, validated every epoch": {
        "fit": {"progressive_resizing": [], "validate_last_epochs": None}
    },
    "24x24 for the first half": {
        "fit": {"progressive_resizing": _HALF_AT_24, "validate_last_epochs": None}
    },
    "24x24 for the first half, validated in the last 2 epochs": {
        "fit": {"progressive_resizing": _HALF_AT_24, "validate_last_epochs": 2}
    },
    "24x24 for the first 60 %, validated in the last 2 epochs": {
        "fit": {
            "progressive_resizing": [{"size": 24, "share": 0.6}],
            "validate_last_epochs": 2,
        }
    },
    "24x24 for the first 70 %, validated in the last 2 epochs": {
        "fit": {
            "progressive_resizing": [{"size": 24, "share": 0.7}],
            "validate_last_epochs": 2,
        }
    },
    "16x16 then 24x24 (a quarter each), validated in the last 2 epochs": {
        "fit": {
            "progressive_resizing": [
                {"size": 16, "share": 0.25},
                {"size": 24, "share": 0.25},
            ],
            "validate_last_epochs": 2,
        }
    },
}
# --recipes chooses the fastest recipe whose best validation accuracy is at most this
# far below the reference's (issue 24: "within 0.2 points on validation").
RECIPE_TOLERANCE = 0.002


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """Turn ``a.b=value`` strings into nested runtime parameters; values are YAML, as
    for ``kedro run --params`` (``false``, ``null``, ``[1, 2]``, ``0.5``)."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        *parents, leaf = key.split(".")
        node = params
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return params


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``changes`` merged in key by key."""
    result = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def session(env: str, params: dict[str, Any]) -> KedroSession:
    bootstrap_project(Path.cwd())
    return KedroSession.create(
        project_path=Path.cwd(),
        env=None if env == "base" else env,
        runtime_params=params,
    )


def training_params(env: str, params: dict[str, Any]) -> ModelTrainingParams:
    with session(env, params) as s:
        raw = s.load_context().config_loader["parameters"]["model_training"]
    return ModelTrainingParams.model_validate(raw)


def ensure_arrays(env: str, params: dict[str, Any]) -> None:
    """Run data_ingestion once if this environment has no persisted arrays yet."""
    with session(env, params) as s:
        if s.load_context().catalog.exists("x_train"):
            return
    with session(env, params) as s:
        s.run(pipeline_names=["data_ingestion"])


def load(env: str, params: dict[str, Any], *names: str) -> list[Any]:
    with session(env, params) as s:
        catalog = s.load_context().catalog
        return [catalog.load(name) for name in names]


class BatchClock(keras.callbacks.Callback):
    """Times the end of every training batch."""

    def __init__(self) -> None:
        super().__init__()
        self.ends: list[float] = []

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.ends.append(time.perf_counter())


def _batches(
    params: ModelTrainingParams, x: np.ndarray, y: np.ndarray, model: keras.Model
) -> TrainingBatches:
    one_hot = isinstance(model.loss, keras.losses.CategoricalCrossentropy)
    return TrainingBatches(
        x,
        keras.utils.to_categorical(y, 10) if one_hot else y,
        batch_size=params.fit.batch_size,
        seed=params.seed,
        augmentation=params.fit.augmentation,
        drop_remainder=True,
    )


def training_rate(
    params: ModelTrainingParams, x: np.ndarray, y: np.ndarray, steps: int = 8
) -> tuple[float, int]:
    """Return (training images/s in steady state, parameter count) of the model
    ``params`` build, fed as ``train_model`` feeds it (see the module's docstring)."""
    steps = max(2, steps)
    # Cycles through a small set if need be: only the arithmetic is timed.
    index = np.arange(params.fit.batch_size * steps) % len(x)
    x, y = x[index], y[index]
    model = compile_model(
        build_model(params.model, params.seed, x), params.compile, params.fit, y
    )
    batches = _batches(params, x, y, model)
    clock = BatchClock()
    with fused_batchnorm(model, params.fit.fused_batchnorm):
        model.fit(
            **batches.fit_inputs(0, 1),
            epochs=1,
            verbose=0,
            shuffle=False,
            callbacks=[clock],
        )
    timed = len(clock.ends) - 1
    rate = timed * params.fit.batch_size / (clock.ends[-1] - clock.ends[0])
    return rate, model.count_params()


def input_rate(params: ModelTrainingParams, x: np.ndarray, y: np.ndarray) -> float:
    """Return images/s of the input pipeline alone: one epoch of the batches that
    ``train_model`` feeds ``fit``, augmentation included."""
    model = build_model(params.model, params.seed, x[:10])
    model.compile(loss=_loss(params))
    batches = _batches(params, x, y, model)
    feed = batches.fit_inputs(0, 1)["x"]
    iterator = feed.as_numpy_iterator() if hasattr(feed, "as_numpy_iterator") else feed
    start = time.perf_counter()
    count = sum(len(images) for images, _ in iterator)
    return count / (time.perf_counter() - start)


def _loss(params: ModelTrainingParams) -> keras.losses.Loss:
    if params.compile.loss == "categorical_crossentropy":
        return keras.losses.CategoricalCrossentropy()
    return keras.losses.SparseCategoricalCrossentropy()


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_config(
    env: str, params: dict[str, Any], *, speeds: bool = True, report: bool = True
) -> dict[str, Any]:
    """Train (and report) through the pipelines; return the measured figures."""
    ensure_arrays(env, params)
    config = training_params(env, params)
    x_train, y_train = load(env, params, "x_train", "y_train")
    figures: dict[str, Any] = {"env": env, "train_images": len(x_train)}
    if speeds:
        figures["train_img_s"], figures["parameters"] = training_rate(
            config, x_train, y_train
        )
        figures["input_img_s"] = input_rate(config, x_train, y_train)
    pipelines = ["model_training"]
    if report:
        pipelines += ["reporting", "tta_selection"]
    start = time.perf_counter()
    with session(env, params) as s:
        s.run(pipeline_names=pipelines)
    figures["pipeline_s"] = time.perf_counter() - start
    (history,) = load(env, params, "training_history")
    best = history[history["best"].astype(bool)]
    figures |= {
        "epochs": len(history),
        "epoch_s": float(np.median(history["seconds"])),
        "training_s": float(history["seconds"].sum()),
        "best_epoch": int(best["epoch"].iloc[0]),
        "best_val_accuracy": float(best["val_accuracy"].iloc[0]),
    }
    if report:
        model, x_test, metrics, selection, reporting = load(
            env,
            params,
            "trained_model",
            "x_test",
            "test_metrics",
            "tta_selection",
            "params:reporting",
        )
        if not isinstance(reporting, ReportingParams):  # the raw dict, unvalidated
            reporting = ReportingParams.model_validate(reporting)
        size = reporting.batch_size
        model.predict(x_test[:size], batch_size=size, verbose=0)
        start = time.perf_counter()
        model.predict(x_test, batch_size=size, verbose=0)
        figures |= {
            "inference_img_s": len(x_test) / (time.perf_counter() - start),
            "val_accuracy_tta": selection["candidates"]
            .get(selection["configured"], {})
            .get("accuracy"),
            "test_accuracy": metrics["accuracy"],
            "test_accuracy_tta": metrics.get("tta", {}).get("accuracy"),
            "test_ece": metrics["expected_calibration_error"],
            "test_ece_temperature_scaled": metrics["temperature_scaled"][
                "expected_calibration_error"
            ],
            "temperature": metrics["temperature_scaled"]["temperature"],
        }
    figures["peak_rss_gib"] = peak_rss_gib()
    return figures


def print_figures(figures: dict[str, Any]) -> None:
    for key, value in figures.items():
        if isinstance(value, float):
            shown = f"{value:,.4f}" if abs(value) < 10 else f"{value:,.0f}"  # noqa: PLR2004
        else:
            shown = value
        print(f"{key:>22}: {shown}", flush=True)


def machine() -> dict[str, Any]:
    cpu = describe_cpu()
    return {
        "processor": platform.processor() or platform.machine(),
        "cpu": cpu["cpu"],
        "cpu_flags": cpu["flags"],  # native bfloat16, VNNI
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "tensorflow_kernels": tensorflow_kernels(),  # oneDNN or Eigen
        # Set to emulate an older CPU's kernels (AVX2) on this one.
        "onednn_max_cpu_isa": onednn_isa_cap(),
    }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def stamped(mode: str) -> Path:
    """The default JSON file of a benchmark started now."""
    return RESULTS / f"{mode}-{_now()}.json"


def write(
    output: Path | None,
    mode: str,
    result: dict[str, Any],
    *,
    quiet: bool = False,
    script: str = "benchmark.py",
) -> Path:
    """Write ``result`` with the machine and the command to ``output`` (a JSON file)."""
    path = output or stamped(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        # Quoted as a shell reads it: recipe names hold spaces.
        "command": f"python benchmarks/{script} " + shlex.join(sys.argv[1:]),
        "date": _now(),
        "machine": machine(),
        **result,
    }
    path.write_text(json.dumps(document, indent=1, default=str) + "\n")
    if not quiet:
        print(f"\nwritten to {path}", flush=True)
    return path


def seeds(
    env: str, extra: dict[str, Any], count: int, save: Callable[[dict], Any]
) -> dict[str, Any]:
    """Run the configuration ``count`` times with seeds 0..count-1 (model training and
    data order; the split stays); return each run's figures and mean / std. ``save``
    gets the runs so far after each one, so an interrupted benchmark keeps them."""
    runs = []
    for seed in range(count):
        params = merged(extra, {"model_training": {"seed": seed}})
        figures = run_config(env, params, speeds=seed == 0)
        print(f"\n[seed {seed}]", flush=True)
        print_figures(figures)
        runs.append(figures)
        save({"env": env, "params": extra, "runs": runs})
    summary = {}
    for key in (
        "test_accuracy",
        "test_accuracy_tta",
        "best_val_accuracy",
        "training_s",
    ):
        values = [r[key] for r in runs if r.get(key) is not None]
        if values:
            summary[key] = {
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "min": min(values),
                "max": max(values),
            }
    print(f"\nOver {count} seeds (mean +- std):")
    for key, s in summary.items():
        print(
            f"{key:>22}: {s['mean']:.4f} +- {s['std']:.4f}  [{s['min']:.4f}, {s['max']:.4f}]"
        )
    return {"env": env, "params": extra, "runs": runs, "summary": summary}


def ablation(
    env: str,
    extra: dict[str, Any],
    only: list[str] | None,
    save: Callable[[dict], Any],
    *,
    recipe: bool = True,
    speed: bool = False,
) -> dict[str, Any]:
    """Train the configuration (unless ``recipe`` is false), then again with each
    ingredient switched off; return the best validation accuracy and seconds an epoch
    of each (no test set read). ``save`` gets the rows so far after each run. With
    ``speed``, train nothing to the end: measure each one's training images/s."""
    names = ["(the recipe)"] if recipe else []
    names += only or list(INGREDIENTS)
    measure, shown = _speed_measure(env, extra) if speed else _training_measure(env)
    rows = []
    for name in names:
        params = merged(extra, {"model_training": INGREDIENTS.get(name, {})})
        row = {"without": name, **measure(params)}
        figures = "".join(f"{row[key]:>10{spec}}" for key, spec in shown.items())
        print(f"{name:<55}{figures}", flush=True)
        rows.append(row)
        save({"env": env, "params": extra, "rows": rows})
    return {"env": env, "params": extra, "rows": rows}


def recipes(
    env: str,
    extra: dict[str, Any],
    only: list[str] | None,
    save: Callable[[dict], Any],
    earlier: list[dict[str, Any]] | None = None,
    seeds: list[int] | None = None,
) -> dict[str, Any]:
    """Train each recipe of ``RECIPES`` to the end on each of ``seeds`` (model training
    and data order; ``None``: the configured seed only; no test set read); return each
    run's best validation accuracy and training seconds, their means over the seeds, and
    the recipe chosen on validation (``choose_recipe``). Seeds are the outer loop, so
    an interrupted run leaves every recipe on the same seeds. ``earlier`` rows
    (``--add-to``) come first and are not trained again. ``save`` gets the result so far
    after each run."""
    rows: list[dict[str, Any]] = list(earlier or [])
    done = {(row["recipe"], row.get("seed")) for row in rows}
    names = only or list(RECIPES)
    pending = [
        (seed, name)
        for seed in seeds or [None]
        for name in names
        if (name, seed) not in done
    ]
    result: dict[str, Any] = {"env": env, "params": extra, "rows": rows}
    print(f"{'recipe':<70}{'seed':>6}{'val. acc.':>10}{'train s':>9}", flush=True)
    if rows:
        result |= choose_recipe(rows)
        for row in rows:
            print(_recipe_line(row) + "  (earlier run)")
    for seed, name in pending:
        params = merged(extra, {"model_training": RECIPES[name]})
        if seed is not None:
            params = merged(params, {"model_training": {"seed": seed}})
        figures = run_config(env, params, speeds=False, report=False)
        row = {"recipe": name, "seed": seed, "params": RECIPES[name]} | {
            k: figures[k]
            for k in (
                "best_val_accuracy",
                "best_epoch",
                "training_s",
                "epoch_s",
                "epochs",
            )
        }
        rows.append(row)
        print(_recipe_line(row))
        result = {"env": env, "params": extra, "rows": rows, **choose_recipe(rows)}
        save(result)
    print(f"\nchosen on validation: {result['chosen']} ({result['rule']})")
    return result


def _recipe_line(row: dict[str, Any]) -> str:
    return (
        f"{row['recipe']:<70}{'' if row.get('seed') is None else row['seed']:>6}"
        f"{row['best_val_accuracy']:>10.4f}{row['training_s']:>9.0f}"
    )


def earlier_recipes(
    path: Path, env: str, extra: dict[str, Any], seed: int | None = None
) -> list[dict]:
    """The rows of an earlier ``--recipes`` run (``--add-to``), refused unless it
    trained the same environment and parameters on a machine of the same kind, so
    that its rows and new ones compare. Rows from before seeds were recorded trained
    on the configured one: they get ``seed``."""
    try:
        document = json.loads(path.read_text())
        rows, recorded = document["rows"], document["machine"]
        for row in rows:
            row["recipe"], row["best_val_accuracy"], row["training_s"]  # noqa: B018
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SystemExit(
            f"--add-to {path}: expected the JSON file of a --recipes run ({error})"
        ) from None
    here = machine()
    # The CPU itself must be recorded and match; files from before the other keys
    # were recorded (the kernels, the ISA cap) are read as matching on them.
    there = {key: recorded.get(key) for key in ("cpu", "cpus")} | {
        key: recorded.get(key, here[key])
        for key in ("cpu_flags", "backend", "tensorflow_kernels", "onednn_max_cpu_isa")
    }
    differs = {key: (there[key], here[key]) for key in there if there[key] != here[key]}
    setup = {
        "env": (document.get("env"), env),
        "params": (document.get("params"), extra),
    }
    differs |= {key: pair for key, pair in setup.items() if pair[0] != pair[1]}
    if differs:
        raise SystemExit(
            f"--add-to {path}: its rows do not compare with a run here; "
            + ", ".join(
                f"{k}: {a!r} there, {b!r} here" for k, (a, b) in differs.items()
            )
        )
    return [{**row, "seed": row.get("seed", seed)} for row in rows]


def recipe_means(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each recipe's runs (rows) as one: its seeds, and the mean (and standard
    deviation) of its best validation accuracy and training seconds; in the order the
    recipes first appear."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        runs.setdefault(row["recipe"], []).append(row)
    means = []
    for recipe, its in runs.items():
        accuracy = [r["best_val_accuracy"] for r in its]
        means.append(
            {
                "recipe": recipe,
                "seeds": [r.get("seed") for r in its],
                "best_val_accuracy": statistics.fmean(accuracy),
                "best_val_accuracy_std": (
                    statistics.stdev(accuracy) if len(accuracy) > 1 else None
                ),
                "training_s": statistics.fmean(r["training_s"] for r in its),
            }
        )
    return means


def choose_recipe(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return each recipe's means over its seeds (``recipe_means``), the fastest recipe
    whose mean best validation accuracy is at most ``RECIPE_TOLERANCE`` below the first
    recipe's, and the rule that chose it. Only recipes trained on every seed the first
    was trained on are compared, on those seeds, so that no recipe is chosen on luckier
    seeds than the reference's."""
    means = recipe_means(rows)
    reference = means[0]
    seeds = set(reference["seeds"])
    on_seeds = [r for r in rows if r.get("seed") in seeds]
    compared = [m for m in recipe_means(on_seeds) if set(m["seeds"]) == seeds]
    floor = reference["best_val_accuracy"] - RECIPE_TOLERANCE
    fit = [m for m in compared if m["best_val_accuracy"] >= floor - 1e-9]
    chosen = min(fit, key=lambda m: m["training_s"])
    over = (
        f"; each the mean over seeds {', '.join(map(str, reference['seeds']))}, "
        "recipes not trained on all of them left out"
        if len(seeds) > 1
        else ""
    )
    return {
        "chosen": chosen["recipe"],
        "rule": (
            "the least training time among the recipes whose best validation "
            f"accuracy is at most {RECIPE_TOLERANCE * 100:g} points below "
            f"'{reference['recipe']}' ({reference['best_val_accuracy']:.2%}){over}"
        ),
        "means": means,
    }


Measure = Callable[[dict[str, Any]], dict[str, Any]]


def _training_measure(env: str) -> tuple[Measure, dict[str, str]]:
    """An ablation row from training to the end: best validation accuracy, seconds an
    epoch, epochs (and how to print the first two)."""

    def measure(params: dict[str, Any]) -> dict[str, Any]:
        figures = run_config(env, params, speeds=False, report=False)
        return {k: figures[k] for k in ("best_val_accuracy", "epoch_s", "epochs")}

    return measure, {"best_val_accuracy": ".4f", "epoch_s": ".1f"}


def _speed_measure(env: str, extra: dict[str, Any]) -> tuple[Measure, dict[str, str]]:
    """An ablation row from training speed alone: images/s and the seconds an epoch of
    training they imply (every row timed on the same arrays, loaded once)."""
    ensure_arrays(env, extra)
    x, y = load(env, extra, "x_train", "y_train")

    def measure(params: dict[str, Any]) -> dict[str, Any]:
        rate, _ = training_rate(training_params(env, params), x, y)
        return {"train_img_s": rate, "train_s_per_epoch": len(x) / rate}

    return measure, {"train_img_s": ".1f", "train_s_per_epoch": ".1f"}


def compare(minutes: float, extra: dict[str, Any]) -> dict[str, Any]:
    """Train notebook and default for the same wall-clock budget; return both."""
    rows = []
    for env in ("notebook", "base"):
        ensure_arrays(env, extra)
        config = training_params(env, extra)
        x, y = load(env, extra, "x_train", "y_train")
        rate, _ = training_rate(config, x, y)
        # Validation adds about a tenth of an epoch; keep at least one epoch.
        epochs = max(1, int(minutes * 60 / (len(x) / rate * 1.1)))
        print(
            f"[{env}] {rate:,.0f} img/s -> {epochs} epochs in {minutes} min", flush=True
        )
        params = merged(extra, {"model_training": {"fit": {"epochs": epochs}}})
        figures = run_config(env, params, speeds=False)
        rows.append({"config": env, "train_img_s": rate, **figures})
    print(f"\nSame budget: {minutes} minutes of training each")
    print(
        f"{'config':<10}{'epochs':>8}{'train s':>10}{'val acc':>10}{'test acc':>10}{'TTA':>10}"
    )
    for r in rows:
        tta = r["test_accuracy_tta"]
        print(
            f"{r['config']:<10}{r['epochs']:>8}{r['training_s']:>10.0f}"
            f"{r['best_val_accuracy']:>10.4f}{r['test_accuracy']:>10.4f}"
            f"{(f'{tta:.4f}' if tta is not None else '-'):>10}"
        )
    return {"minutes": minutes, "params": extra, "rows": rows}


def sweep(env: str, specs: list[str], extra: dict[str, Any]) -> dict[str, Any]:
    """Return the training speed of fast_cnn at each width spec, both precisions."""
    ensure_arrays(env, extra)
    x, y = load(env, extra, "x_train", "y_train")
    rows = []
    print(f"{'widths':<16}{'precision':>16}{'params':>12}{'train img/s':>14}")
    for spec in specs:
        widths = [int(w) for w in spec.split(",")]
        for precision in ("float32", "mixed_bfloat16"):
            change = {"model": {"precision": precision, "fast_cnn": {"widths": widths}}}
            params = merged(extra, {"model_training": change})
            rate, count = training_rate(training_params(env, params), x, y)
            print(f"{spec:<16}{precision:>16}{count:>12,}{rate:>14,.0f}", flush=True)
            rows.append(
                {
                    "widths": widths,
                    "precision": precision,
                    "parameters": count,
                    "train_img_s": rate,
                }
            )
    return {"env": env, "params": extra, "rows": rows}


def _recipes_mode(
    parser: argparse.ArgumentParser, args: argparse.Namespace, extra: dict[str, Any]
) -> None:
    """``--recipes``: train them (on ``--recipe-seeds``) and write the result."""
    unknown = set(args.recipes) - set(RECIPES)
    if unknown:
        parser.error(f"unknown recipe(s) {sorted(unknown)}; expected {list(RECIPES)}")
    output = args.output or stamped("recipes")
    configured = training_params(args.env, extra).seed
    earlier = (
        earlier_recipes(args.add_to, args.env, extra, configured)
        if args.add_to
        else None
    )
    result = recipes(
        args.env,
        extra,
        args.recipes or None,
        lambda partial: write(output, "recipes", partial, quiet=True),
        earlier,
        args.recipe_seeds or [configured],
    )
    write(output, "recipes", result)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="base", help="base, notebook, smoke or gpu")
    parser.add_argument("--params", nargs="*", default=[], help="key=value (YAML)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--seeds", type=int, help="run N times; mean and std")
    mode.add_argument("--compare", action="store_true", help="notebook vs default")
    mode.add_argument("--ablation", nargs="*", metavar="INGREDIENT", help="each off")
    mode.add_argument("--sweep", nargs="+", metavar="W1,W2,W3", help="speed only")
    mode.add_argument(
        "--recipes", nargs="*", metavar="RECIPE", help="each trained; one chosen"
    )
    parser.add_argument(
        "--add-to",
        type=Path,
        metavar="JSON",
        help="--recipes: start from an earlier run's rows; train only the others",
    )
    parser.add_argument(
        "--recipe-seeds",
        nargs="+",
        type=int,
        metavar="SEED",
        help="--recipes: train each on each seed (default: the configured one); "
        "chosen on the means",
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="--compare budget")
    parser.add_argument("--epochs", type=int, help="--ablation: epochs of each run")
    parser.add_argument(
        "--speed",
        action="store_true",
        help="--ablation: each one's training images/s only (nothing trained to the end)",
    )
    parser.add_argument(
        "--no-recipe",
        action="store_true",
        help="--ablation: skip the recipe's own run (its row comes from another run)",
    )
    parser.add_argument("--output", type=Path, help="JSON file for the figures")
    parser.add_argument("--project", type=Path, default=PROJECT, help="Kedro project")
    args = parser.parse_args(argv)
    # Sessions use the working directory as the project, as `kedro run` does.
    os.chdir(args.project)
    extra = parse_params(args.params)
    print(f"{machine()}", flush=True)
    if args.recipe_seeds and args.recipes is None:
        parser.error("--recipe-seeds: only with --recipes")
    if args.sweep:
        write(args.output, "sweep", sweep(args.env, args.sweep, extra))
    elif args.recipes is not None:
        _recipes_mode(parser, args, extra)
    elif args.compare:
        write(args.output, "compare", compare(args.minutes, extra))
    elif args.ablation is not None:
        if args.epochs:
            extra = merged(extra, {"model_training": {"fit": {"epochs": args.epochs}}})
        unknown = set(args.ablation) - set(INGREDIENTS)
        if unknown:
            parser.error(
                f"unknown ingredient(s) {sorted(unknown)}; expected {list(INGREDIENTS)}"
            )
        output = args.output or stamped("ablation")
        result = ablation(
            args.env,
            extra,
            args.ablation or None,
            lambda partial: write(output, "ablation", partial, quiet=True),
            recipe=not args.no_recipe,
            speed=args.speed,
        )
        write(output, "ablation", result)
    elif args.seeds:
        output = args.output or stamped("seeds")
        result = seeds(
            args.env,
            extra,
            args.seeds,
            lambda partial: write(output, "seeds", partial, quiet=True),
        )
        write(output, "seeds", result)
    else:
        start = time.perf_counter()
        figures = run_config(args.env, extra)
        figures["wall_s"] = time.perf_counter() - start
        print_figures(figures)
        write(
            args.output, "run", {"env": args.env, "params": extra, "figures": figures}
        )


if __name__ == "__main__":
    sys.exit(main())
