"""Print the README's result tables from the JSON files under benchmarks/results/.

Usage::

    python benchmarks/tables.py            # every table, in Markdown
    python benchmarks/tables.py --readme   # write them into README.md, under their markers

The README's tables are this script's output (each under a ``<!-- benchmarks/tables.py
NAME -->`` line); a test checks that they still are, so that no figure in them is typed
by hand.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


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
    summary = _load("seeds-gpu-h200.json")["summary"]
    lines = ["| figure | mean | std | min | max |", "|---|---:|---:|---:|---:|"]
    for key, s in summary.items():
        if key == "training_s":
            cells = [f"{s[k]:.1f}" for k in ("mean", "std", "min", "max")]
            lines.append(f"| training seconds (10 epochs) | {' | '.join(cells)} |")
        else:
            cells = [_pct(s[k]) for k in ("mean", "std", "min", "max")]
            lines.append(f"| {LABELS.get(key, key)} % | {' | '.join(cells)} |")
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


def use_table() -> str:
    """Inference and service speed on 2 cores: the earlier smoke model (the previous
    default's architecture) beside today's default network."""
    runs = [
        ("smoke model of 2026-11-25 (64/128/256)", "inference.json", "service.json"),
        (
            "today's default (64/256/256)",
            "inference-default-avx2.json",
            "service-default-avx2.json",
        ),
    ]
    figures = []
    for _, inference, service in runs:
        i, v = _load(inference), _load(service)
        predict = i["predict_img_s_batch_1000"]
        # Named after the precision the training machine chose.
        (trained,) = [k for k in predict if k.startswith("keras_as_trained_")]
        precision = trained.removeprefix("keras_as_trained_").replace("_", " ")
        compute = i.get("compute")  # measured since 2026-11-26 only
        bound = (
            [
                f"{compute['multiply_adds_per_image'] / 1e6:.0f}",
                f"{compute['float32_gemm_gflop_s']:.0f}",
                f"{compute['gemm_bound_img_s']:,.0f}",
            ]
            if compute
            else ["-"] * 3
        )
        figures.append(
            [
                f"{i['end_to_end_img_s']:,.0f}",
                f"{i['read_decode_resize_img_s']['workers_default']:,.0f}",
                f"{predict[trained]:,.0f} ({precision})",
                _spread(i.get("keras_model_predict_passes_img_s")),
                f"{predict['keras_float32_copy']:,.0f}",
                f"{predict['onnxruntime_float32']:,.0f}",
                f"{predict['tf_saved_model_float32']:,.0f}",
                f"{v['one_image_latency']['p50_ms']:.1f} / "
                f"{v['one_image_latency']['p99_ms']:.1f}",
                f"{v['concurrent_batches']['img_s']:,.0f}",
                *bound,
            ]
        )
    names = [
        "inference pipeline end to end, 10,000 JPEG files, images/s (target 2,000)",
        "reading + decoding + resizing, images/s",
        "prediction alone (batch 1000), Keras as trained, images/s (`predict_on_batch` since 2026-11-26)",
        "the same with `model.predict` (not used), slowest - fastest of 4 passes",
        "Keras float32 inference copy, images/s",
        "ONNX graph, onnxruntime (float32), images/s",
        "TensorFlow SavedModel (float32), images/s",
        "`kedro serve` one-image latency p50 / p99, ms (target p50 20)",
        "`kedro serve`, 8 clients x batches of 32, images/s (target 1,000)",
        "multiply-adds an image (convolutions, dense), millions",
        "best float32 matrix multiply on these cores (NumPy), GFLOP/s",
        "images/s that rate allows the multiply-adds alone",
    ]
    lines = [
        f"| figure | {' | '.join(r[0] for r in runs)} |",
        "|---|" + "---:|" * len(runs),
    ]
    for row, name in enumerate(names):
        lines.append(f"| {name} | {' | '.join(f[row] for f in figures)} |")
    return "\n".join(lines)


TABLES = {
    "ablation": ablation_table,
    "seeds": seeds_table,
    "epochs": epochs_table,
    "reference": reference_table,
    "use": use_table,
}


def marker(name: str) -> str:
    return f"<!-- benchmarks/tables.py {name} -->\n"


def with_tables(readme: str) -> str:
    """Return ``readme`` with the block under each table's marker (up to the next blank
    line) replaced by the table."""
    for name, table in TABLES.items():
        if marker(name) not in readme:
            raise ValueError(f"README.md has no line {marker(name).strip()!r}")
        before, after = readme.split(marker(name), 1)
        rest = (
            after.split("\n\n", 1)[1] if after.startswith("|") else after.lstrip("\n")
        )
        readme = f"{before}{marker(name)}{table()}\n\n{rest}"
    return readme


def main(argv: list[str] | None = None) -> None:
    argv = list(argv or [])
    if "--readme" in argv:
        readme = RESULTS.parents[1] / "README.md"
        readme.write_text(with_tables(readme.read_text()))
        print(f"written to {readme}")
        return
    for name in argv or list(TABLES):
        print(marker(name) + TABLES[name]() + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
