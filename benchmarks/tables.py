"""The documentation's result tables, written from the JSON files under benchmarks/results/.

Usage::

    python benchmarks/tables.py            # every table, in Markdown
    python benchmarks/tables.py seeds use  # some of them
    python benchmarks/tables.py --docs     # write them into docs/*.md, under their markers

In the pages under docs/, each table sits under a ``<!-- benchmarks/tables.py NAME -->``
line and is this script's output; tests/test_docs.py checks that every marker's table
still is, and that every table is shown somewhere, so that no figure is typed by hand.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
DOCS = RESULTS.parents[1] / "docs"


def _load(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / name).read_text())


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


def ablation_table() -> str:
    """Each ingredient off in turn: validation accuracy after the recipe's 10 epochs (one
    GPU run each) and training seconds an epoch on this project's 2-core machine."""
    accuracy = {r["without"]: r for r in _load("ablation-gpu-h200.json")["rows"]}
    speed = {r["without"]: r for r in _load("ablation-speed-avx2.json")["rows"]}
    recipe = accuracy["(the recipe)"]["best_val_accuracy"]
    lines = [
        "| switched off | val. accuracy % (GPU, 10 epochs) | change, points | "
        "training s an epoch (2 cores, AVX2, float32) |",
        "|---|---:|---:|---:|",
    ]
    for name, row in accuracy.items():
        value = row["best_val_accuracy"]
        change = "" if name == "(the recipe)" else f"{100 * (value - recipe):+.2f}"
        seconds = speed.get(name, {}).get("train_s_per_epoch")
        shown = f"{seconds:.0f}" if seconds is not None else "-"
        lines.append(f"| {name} | {_pct(value)} | {change} | {shown} |")
    return "\n".join(lines)


LABELS = {
    "test_accuracy": "test accuracy",
    "test_accuracy_tta": "test accuracy with TTA",
    "best_val_accuracy": "best validation accuracy",
}


def seeds_table() -> str:
    """The recipe over 5 seeds on one GPU: mean +- std of each figure."""
    seeded = _load("seeds-gpu-h200.json")
    lines = ["| figure | mean | std | min | max |", "|---|---:|---:|---:|---:|"]
    for key, s in seeded["summary"].items():
        if key == "training_s":
            cells = [f"{s[k]:.1f}" for k in ("mean", "std", "min", "max")]
            lines.append(f"| training seconds (10 epochs) | {' | '.join(cells)} |")
        else:
            cells = [_pct(s[k]) for k in ("mean", "std", "min", "max")]
            lines.append(f"| {LABELS.get(key, key)} % | {' | '.join(cells)} |")
    epochs = [r["epoch_s"] for r in seeded["runs"]]
    stats = [
        statistics.fmean(epochs),
        statistics.stdev(epochs),
        min(epochs),
        max(epochs),
    ]
    lines.append(
        "| seconds an epoch (each run's median, validation included) | "
        + " | ".join(f"{v:.2f}" for v in stats)
        + " |"
    )
    return "\n".join(lines)


def epochs_table() -> str:
    """The recipe at more epochs (one GPU run each): what a longer budget buys."""
    rows = _load("epochs-gpu-h200.json")["runs"]
    seeded = _load("seeds-gpu-h200.json")
    seeds = seeded["summary"]
    val_tta = statistics.fmean(r["val_accuracy_tta"] for r in seeded["runs"])
    lines = [
        "| epochs | best val. accuracy % | val. TTA % | test % | test TTA % |",
        "|---:|---:|---:|---:|---:|",
        f"| 10 (mean of 5 seeds) | {_pct(seeds['best_val_accuracy']['mean'])} | "
        f"{_pct(val_tta)} | "
        f"{_pct(seeds['test_accuracy']['mean'])} | "
        f"{_pct(seeds['test_accuracy_tta']['mean'])} |",
    ]
    for r in rows:
        lines.append(
            f"| {r['epochs']} | {_pct(r['best_val_accuracy'])} | "
            f"{_pct(r['val_accuracy_tta'])} | {_pct(r['test_accuracy'])} | "
            f"{_pct(r['test_accuracy_tta'])} |"
        )
    return "\n".join(lines)


def reference_table() -> str:
    """airbench94 itself (PyTorch) on the JPEG copy."""
    rows = _load("airbench94-jpeg-h200.json")["rows"]
    lines = [
        "| training images | epochs | runs | test TTA accuracy %, mean +- std |",
        "|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['train_images']:,} | {r['epochs']} | {r['runs']} | "
            f"{_pct(r['mean'])} +- {_pct(r['std'])} |"
        )
    return "\n".join(lines)


def _spread(values: list[float] | None) -> str:
    return f"{min(values):,.0f} - {max(values):,.0f}" if values else "-"


def _day(result: dict[str, Any]) -> str:
    return result["measured_at"][:10]


def _date(result: dict[str, Any]) -> str:
    """The day of benchmark.py's ``write()`` stamp (``20261207T172935Z``), as 2026-12-07."""
    day = result["date"]
    return f"{day[:4]}-{day[4:6]}-{day[6:8]}"


def _service_cells(service: dict[str, Any] | None) -> list[str]:
    """One service benchmark's latency (p50 / p99) and throughput cells."""
    if service is None:
        return ["-", "-"]
    latency = service["one_image_latency"]
    return [
        f"{latency['p50_ms']:.1f} / {latency['p99_ms']:.1f}",
        f"{service['concurrent_batches']['img_s']:,.0f}",
    ]


def use_table() -> str:
    """Inference and service speed on 2 cores: a smoke model of the previous default's
    architecture beside the default network, on a CPU without native bfloat16 and on
    one with it (and VNNI), where the int8 export and `kedro serve --engine onnx_int8`
    were measured too."""
    runs = [
        ("64/128/256 smoke model, AVX2", "inference.json", "service.json", None),
        (
            "default network, AVX2",
            "inference-default-avx2.json",
            "service-default-avx2.json",
            None,
        ),
        (
            "default network, AVX512-BF16 and VNNI",
            "inference-default-avx512bf16.json",
            "service-default-keras-avx512bf16.json",
            "service-default-onnx_int8-avx512bf16.json",
        ),
    ]
    figures = []
    headers = []
    for label, inference, service, service_int8 in runs:
        i, v = _load(inference), _load(service)
        q = _load(service_int8) if service_int8 else None
        headers.append(f"{label} (`{inference}`, {_day(i)})")
        predict = i["predict_img_s_batch_1000"]
        # Named after the precision the training machine chose.
        (trained,) = [k for k in predict if k.startswith("keras_as_trained_")]
        precision = trained.removeprefix("keras_as_trained_").replace("_", " ")
        photos = i["photos_decode_resize_img_s"]
        compute = i.get("compute")  # not in the earlier file
        bound = (
            [
                f"{compute['multiply_adds_per_image'] / 1e6:.0f}",
                f"{compute['float32_gemm_gflop_s']:.0f}",
                f"{compute['gemm_bound_img_s']:,.0f}",
                f"{100 * compute['share_of_bound']['onnxruntime_float32']:.0f} / "
                f"{100 * compute['share_of_bound'][trained]:.0f}",
            ]
            if compute
            else ["-"] * 4
        )
        figures.append(
            [
                f"{i['end_to_end_img_s']:,.0f}",
                f"{i['end_to_end_int8_img_s']:,.0f}"
                if "end_to_end_int8_img_s" in i
                else "-",
                f"{i['read_decode_resize_img_s']['workers_default']:,.0f}",
                f"{photos['workers_1']:,.0f} / {photos['workers_default']:,.0f}",
                f"{predict[trained]:,.0f} ({precision})",
                _spread(i.get("keras_model_predict_passes_img_s")),
                f"{predict['keras_float32_copy']:,.0f}",
                f"{predict['onnxruntime_float32']:,.0f}",
                f"{predict['onnxruntime_int8']:,.0f}"
                if "onnxruntime_int8" in predict
                else "-",
                f"{predict['tf_saved_model_float32']:,.0f}",
                *_service_cells(v),
                *_service_cells(q),
                *bound,
            ]
        )
    names = [
        "inference pipeline end to end, 10,000 JPEG files, images/s (target 2,000)",
        "the same, `--pipeline inference_int8` (the int8 export), images/s",
        "reading + decoding + resizing 32x32 files, images/s",
        "decoding + resizing 1024x768 photos, images/s, 1 thread / one per core",
        "prediction alone (batch 1000), Keras as trained, images/s",
        "the same with `model.predict` (not used), slowest - fastest of 4 passes",
        "Keras float32 inference copy, images/s",
        "ONNX graph, onnxruntime (float32), images/s",
        "int8 ONNX graph (the export's quantization), onnxruntime, images/s",
        "TensorFlow SavedModel (float32), images/s",
        "`kedro serve` one-image latency p50 / p99, ms (target p50 20)",
        "`kedro serve`, 8 clients x batches of 32, images/s (target 1,000)",
        "`kedro serve --engine onnx_int8` one-image latency p50 / p99, ms",
        "`kedro serve --engine onnx_int8`, 8 clients x batches of 32, images/s",
        "multiply-adds an image (convolutions, dense), millions",
        "best float32 matrix multiply on these cores (NumPy), GFLOP/s",
        "images/s that rate allows the multiply-adds alone",
        "share of that bound reached, ONNX / Keras as trained, %",
    ]
    lines = [
        f"| figure | {' | '.join(headers)} |",
        "|---|" + "---:|" * len(runs),
    ]
    for row, name in enumerate(names):
        lines.append(f"| {name} | {' | '.join(f[row] for f in figures)} |")
    return "\n".join(lines)


def sweep_table() -> str:
    """Training speed of the default network on 2 CPU cores, in each precision."""
    sweep = _load("sweep-64-256-256-avx2.json")
    lines = [
        "| widths | precision | parameters | training images/s |",
        "|---|---|---:|---:|",
    ]
    for r in sweep["rows"]:
        widths = "/".join(str(w) for w in r["widths"])
        lines.append(
            f"| {widths} | {r['precision']} | {r['parameters']:,} | "
            f"{r['train_img_s']:,.0f} |"
        )
    return "\n".join(lines)


# The default run to the end on the AVX512-BF16 machine: before BatchNorm's fused
# kernel, with the model card of its export, and with it.
CPU_RUNS = (
    (
        "default-avx512bf16.json",
        "model-card-default-avx512bf16.json",
        "Keras' BatchNorm, full size; mixed bfloat16",
    ),
    (
        "default-fused-avx512bf16.json",
        None,
        "fused BatchNorm, full size; mixed bfloat16",
    ),
    (
        "default-resized-avx512bf16.json",
        None,
        "the default now (24x24 for the first half, validated in the last 2); "
        "mixed bfloat16",
    ),
    (
        "default-resized-avx2-emulated.json",
        None,
        "the default now (24x24 for the first half, validated in the last 2); float32",
    ),
)


def _cpu_run_cells(run: dict[str, Any], card: dict[str, Any] | None) -> list[str]:
    f = run["figures"]
    exports = "-"
    if card is not None:
        metrics = card["test_metrics"]
        exports = (
            f"{_pct(metrics['accuracy']['onnx'])} / "
            f"{_pct(metrics['accuracy']['onnx_int8'])} "
            f"({_pct(metrics['onnx_int8_vs_float32_copy']['argmax_agreement'])})"
        )
    return [
        f"{f['train_img_s']:,.0f}",
        f"{f['epoch_s']:.0f}",
        f"{f['training_s'] / 60:.1f}",
        f"{f['wall_s'] / 60:.1f}",
        _pct(f["best_val_accuracy"]),
        _pct(f["val_accuracy_tta"]),
        f"{_pct(f['test_accuracy'])} / {_pct(f['test_accuracy_tta'])}",
        f"{f['test_ece']:.3f} / {f['test_ece_temperature_scaled']:.3f} "
        f"(T = {f['temperature']:.2f})",
        f"{f['peak_rss_gib']:.1f}",
        exports,
    ]


def cpu_run_table() -> str:
    """The default run to the end on 2 CPU cores (``benchmark.py``'s plain mode)."""
    names = [
        "training images/s (steady state)",
        "seconds an epoch, with validation (median)",
        "training, 10 epochs, min",
        "the run (ingestion, speed probes, training, reporting, TTA choice), min",
        "best validation accuracy, %",
        "validation accuracy with the configured TTA, %",
        "test accuracy / with TTA, %",
        "test ECE / temperature-scaled (temperature fitted on validation)",
        "peak resident memory, GiB",
        "its exports' test accuracy, ONNX float32 / int8 (int8's argmax agreement), %",
    ]
    columns, headers = [], []
    for result, card, label in CPU_RUNS:
        run = _load(result)
        columns.append(_cpu_run_cells(run, _load(card) if card else None))
        headers.append(f"{label}{_cap(run)} (`{result}`, {_date(run)})")
    lines = [
        "| default, 10 epochs, 2-core AMD EPYC with AVX512-BF16 and VNNI "
        f"| {' | '.join(headers)} |",
        "|---|" + "---:|" * len(columns),
    ]
    lines += [
        f"| {name} | {' | '.join(column[i] for column in columns)} |"
        for i, name in enumerate(names)
    ]
    return "\n".join(lines)


RECIPES_RESULT = "recipes-more-resizing-avx512bf16.json"


def recipes_table() -> str:
    """Cheaper recipes trained to the end side by side (``benchmark.py --recipes``),
    and the one chosen on validation."""
    result = _load(RECIPES_RESULT)
    rows = result["rows"]
    reference = rows[0]
    lines = [
        f"| recipe (10 epochs; {_isa(result)}, {result['date'][:8]}) | best val. "
        "accuracy % "
        "| change, points | training, min | training time saved |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        name = row["recipe"]
        change = (
            ""
            if row is reference
            else f"{100 * (row['best_val_accuracy'] - reference['best_val_accuracy']):+.2f}"
        )
        saved = 1 - row["training_s"] / reference["training_s"]
        shown = f"**{name}** (chosen)" if name == result["chosen"] else name
        lines.append(
            f"| {shown} | {_pct(row['best_val_accuracy'])} | {change} | "
            f"{row['training_s'] / 60:.1f} | {'' if row is reference else f'{saved:.0%}'} |"
        )
    return "\n".join(lines)


RECIPE_SEEDS_RESULT = "recipes-seeds-avx512bf16.json"


def recipe_seeds_table() -> str:
    """The recipes trained on several seeds (``benchmark.py --recipes --recipe-seeds``):
    each seed's best validation accuracy, their mean, and the one chosen on the means.
    Recipes not trained on every seed of the reference are left out, as the choice
    leaves them out."""
    result = _load(RECIPE_SEEDS_RESULT)
    means = result["means"]
    seeds = means[0]["seeds"]
    compared = [m for m in means if sorted(m["seeds"]) == sorted(seeds)]
    by_run = {(r["recipe"], r["seed"]): r for r in result["rows"]}
    reference = compared[0]
    lines = [
        f"| recipe (10 epochs; {_isa(result)}, {_date(result)}) | "
        + " | ".join(f"seed {seed}, val. %" for seed in seeds)
        + " | **mean**, val. % | change, points | training, min (mean) | saved |",
        "|---|" + "---:|" * (len(seeds) + 4),
    ]
    for m in compared:
        name = m["recipe"]
        shown = f"**{name}** (chosen)" if name == result["chosen"] else name
        change = m["best_val_accuracy"] - reference["best_val_accuracy"]
        saved = 1 - m["training_s"] / reference["training_s"]
        lines.append(
            f"| {shown} | "
            + " | ".join(
                _pct(by_run[name, seed]["best_val_accuracy"]) for seed in seeds
            )
            + f" | **{_pct(m['best_val_accuracy'])}** | "
            + ("" if m is reference else f"{100 * change:+.2f}")
            + f" | {m['training_s'] / 60:.1f} | "
            + ("" if m is reference else f"{saved:.0%}")
            + " |"
        )
    return "\n".join(lines)


def _cap(result: dict[str, Any]) -> str:
    """ ", oneDNN capped at <ISA>" where the run capped it: training_speed.py writes
    the cap beside its machine, benchmark.py inside it; "" where it did not."""
    capped = result.get("onednn_max_cpu_isa") or result["machine"].get(
        "onednn_max_cpu_isa"
    )
    return f", oneDNN capped at {capped}" if capped else ""


def _isa(result: dict[str, Any]) -> str:
    cpu = result["machine"].get("cpu", "CPU")
    return f"{cpu}, {result['machine']['cpus']} cores{_cap(result)}"


def profile_table() -> str:
    """Where one epoch of the default run goes, by op kind (training_speed.py
    --profile)."""
    profile = _load("training-profile-avx2-emulated.json")
    lines = [
        f"| part of an epoch ({profile['precision']}, {_isa(profile)}) | s an epoch "
        "| share |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {r['part']} | {r['epoch_s']:.1f} | {100 * r['share']:.1f} % |"
        for r in profile["rows"]
    ]
    return "\n".join(lines)


# ``benchmarks/main_job.py``'s runs: ``bash scripts/run.sh`` in a fresh clone, timed.
MAIN_JOBS = (
    "main-job-avx512bf16.json",
    "main-job-avx2-emulated.json",
)


def main_job_table() -> str:
    """The main job as a new user runs it, set-up included, and the training plan's
    estimate against the epochs' own seconds (benchmarks/main_job.py)."""
    runs = [(name, _load(name)) for name in MAIN_JOBS]
    rows = {
        "precision (as `precision: auto` chose)": lambda r: r["precision"],
        "set-up (`bash scripts/setup.sh`), min": lambda r: f"{r['setup_s'] / 60:.1f}",
        "`bash scripts/run.sh`, min": lambda r: f"{r['run_s'] / 60:.1f}",
        "**with set-up, min**": lambda r: f"**{r['with_setup_s'] / 60:.1f}**",
        "training: estimated before the first epoch / taken, min": lambda r: (
            f"{r['estimated_training_s'] / 60:.1f} / {r['actual_training_s'] / 60:.1f}"
            f" (ratio {r['ratio']:.2f})"
        ),
        "test accuracy / **with TTA**, %": lambda r: (
            f"{_pct(r['test_accuracy'])} / **{_pct(r['test_accuracy_tta'])}**"
        ),
    }
    headers = [
        f"{_isa(r)} (`{name}`, {_date(r)}, commit {r['commit'][:7]})"
        for name, r in runs
    ]
    lines = [
        f"| fresh clone, the default run | {' | '.join(headers)} |",
        "|---|" + "---:|" * len(runs),
    ]
    lines += [
        f"| {label} | {' | '.join(cell(r) for _, r in runs)} |"
        for label, cell in rows.items()
    ]
    return "\n".join(lines)


# Two runs of the same command, one after the other on the same machine: their spread
# is the noise of a 5-step measure.
CANDIDATE_RUNS = (
    "training-candidates-avx2-emulated.json",
    "training-candidates-avx2-emulated-2.json",
)


# The candidates as the runs named them, and what each is now.
CANDIDATE_LABELS = {
    "tensorflow (default)": "tensorflow, Keras' BatchNorm (the default of those runs)",
    "tensorflow, fused BatchNorm": "tensorflow, fused BatchNorm (the default now)",
}


def candidates_table() -> str:
    """Steady-state training speed of the default network under each candidate
    backend and setting, side by side (training_speed.py --candidates), two runs."""
    runs = [_load(name) for name in CANDIDATE_RUNS]
    rates = [
        {r["candidate"]: r["train_img_s"] for r in run["rows"] if "train_img_s" in r}
        for run in runs
    ]
    first = runs[0]
    reference = [next(iter(rate.values())) for rate in rates]
    bound = statistics.fmean(run["matmul_gflop_s"] for run in runs)
    lines = [
        f"| candidate ({first['precision']}, {_isa(first)}) | training images/s, "
        "run 1 / run 2 | against the first row | share of the float32 matmul bound |",
        "|---|---:|---:|---:|",
    ]
    for name in rates[0]:
        if not all(name in rate for rate in rates):
            continue
        values = [rate[name] for rate in rates]
        against = statistics.fmean(
            v / r for v, r in zip(values, reference, strict=True)
        )
        shares = statistics.fmean(
            next(r for r in run["rows"] if r["candidate"] == name)[
                "share_of_matmul_bound"
            ]
            for run in runs
        )
        lines.append(
            f"| {CANDIDATE_LABELS.get(name, name)} | "
            f"{' / '.join(f'{v:.0f}' for v in values)} | {against:.2f}x "
            f"| {100 * shares:.0f} % |"
        )
    lines.append(
        f"| (the bound: NumPy float32 matmul, {bound:.0f} GFLOP/s, the runs' mean) "
        "| | | |"
    )
    return "\n".join(lines)


DISTRIBUTED_MODES = {
    "none": "{processes} process, {devices} device (`mode: none`)",
    "multi_process": "{processes} processes on loopback (`multi_process`, as "
    "`kedro launch -n {processes}`)",
    "data_parallel": "{processes} process over {devices} {kind} (`data_parallel`)",
}


def distributed_table() -> str:
    """Data-parallel training against one device (benchmarks/distributed.py)."""
    result = _load("distributed.json")
    lines = [
        f"| configuration | devices | training images/s (median of {result['repeats']}"
        " runs) | each run | relative to 1 process | first step, s (one run) | load average "
        "(1 min) during the runs |",
        "|---|---:|---:|---|---:|---:|---|",
    ]
    for r in result["rows"]:
        kind = "virtual CPU devices" if r["platform"] == "cpu" else "GPUs"
        name = DISTRIBUTED_MODES[r["mode"]].format(
            processes=r["processes"], devices=r["devices"], kind=kind
        )
        each = ", ".join(f"{v:.0f}" for v in r["train_img_s_repeats"])
        load = ", ".join(f"{v:.1f}" for v in r["load_average_1min"])
        lines.append(
            f"| {name} | {r['devices']} | {r['train_img_s']:.0f} | {each} | "
            f"{r['relative_to_1_process']:.2f} | {r['first_step_s']:.1f} | {load} |"
        )
    return "\n".join(lines)


TABLES = {
    "ablation": ablation_table,
    "seeds": seeds_table,
    "epochs": epochs_table,
    "reference": reference_table,
    "use": use_table,
    "sweep": sweep_table,
    "cpu_run": cpu_run_table,
    "distributed": distributed_table,
    "profile": profile_table,
    "candidates": candidates_table,
    "recipes": recipes_table,
    "recipe_seeds": recipe_seeds_table,
    "main_job": main_job_table,
}

MARKER = re.compile(r"^<!-- benchmarks/tables\.py (\S+) -->\n", re.MULTILINE)


def marker(name: str) -> str:
    return f"<!-- benchmarks/tables.py {name} -->\n"


def shown(text: str, where: str = "the text") -> list[tuple[str, str]]:
    """Return (name, the block under its marker, up to the next blank line) for each
    marker in ``text``, in order; an unknown name is an error."""
    parts = MARKER.split(text)
    found = []
    for name, after in zip(parts[1::2], parts[2::2]):
        if name not in TABLES:
            raise ValueError(
                f"{where} has a marker for an unknown table {name!r}; "
                f"expected one of {sorted(TABLES)}"
            )
        found.append((name, after.split("\n\n", 1)[0] if after.startswith("|") else ""))
    return found


def with_tables(text: str, where: str = "the text") -> str:
    """Return ``text`` with the block under each marker (up to the next blank line)
    replaced by that table."""
    shown(text, where)  # unknown names
    parts = MARKER.split(text)
    out = [parts[0]]
    for name, after in zip(parts[1::2], parts[2::2]):
        if after.startswith("|"):
            rest = after.split("\n\n", 1)[1] if "\n\n" in after else ""
        else:
            rest = after.lstrip("\n")
        out.append(f"{marker(name)}{TABLES[name]()}\n\n{rest}")
    return "".join(out)


def write_docs(docs: Path = DOCS) -> list[Path]:
    """Fill the markers of every page under ``docs``; return the pages changed. Every
    table must be shown on some page."""
    pages = sorted(docs.rglob("*.md"))
    placed = {name for page in pages for name, _ in shown(page.read_text(), str(page))}
    missing = sorted(set(TABLES) - placed)
    if missing:
        raise ValueError(
            f"no page under {docs} shows the table(s) {missing}: add a line "
            f"{marker(missing[0]).strip()!r} where each belongs"
        )
    changed = []
    for page in pages:
        text = page.read_text()
        filled = with_tables(text, str(page))
        if filled != text:
            page.write_text(filled)
            changed.append(page)
    return changed


def main(argv: list[str] | None = None) -> None:
    argv = list(argv or [])
    if "--docs" in argv:
        changed = write_docs()
        print("\n".join(f"written to {p}" for p in changed) or "no page changed")
        return
    for name in argv or list(TABLES):
        print(marker(name) + TABLES[name]() + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
