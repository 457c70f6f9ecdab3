"""Nodes that compare configurations trained on the same arrays."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure


def _split(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Group ``<variant>__metrics`` / ``<variant>__history`` keyword arguments."""
    runs: dict[str, dict[str, Any]] = {}
    for key, value in results.items():
        variant, _, kind = key.rpartition("__")
        runs.setdefault(variant, {})[kind] = value
    return runs


def compare_variants(**results: Any) -> tuple[pd.DataFrame, Figure]:
    """Return a table of the variants side by side and their curves on shared axes.

    Keyword arguments are ``<variant>__metrics`` (test metrics) and
    ``<variant>__history`` (training history) for each variant. The table has, per
    variant, the epochs trained, the training time, the returned model's epoch and
    validation accuracy, and the test accuracy plain and with test-time augmentation.
    """
    runs = _split(results)
    rows = []
    for variant, run in runs.items():
        history, metrics = run["history"], run["metrics"]
        best = history[history["best"].astype(bool)]
        rows.append(
            {
                "variant": variant,
                "epochs": len(history),
                "training_seconds": float(history["seconds"].sum()),
                "best_epoch": int(best["epoch"].iloc[0]) if len(best) else None,
                "best_val_accuracy": float(best["val_accuracy"].iloc[0])
                if len(best)
                else None,
                "test_accuracy": metrics["accuracy"],
                "test_accuracy_tta": metrics.get("tta", {}).get("accuracy"),
                "test_log_loss": metrics["log_loss"],
            }
        )
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), layout="constrained")
    for variant, run in runs.items():
        history = run["history"]
        elapsed = history["seconds"].cumsum() / 60
        for ax, column in zip(axes, ("val_accuracy", "accuracy"), strict=True):
            ax.plot(elapsed, history[column], marker="o", label=variant)
    for ax, title in zip(
        axes, ("validation accuracy", "training accuracy"), strict=True
    ):
        ax.set_xlabel("training time (minutes)")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1)
        ax.set_title(f"{title}, by training time")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.suptitle("Configurations trained on the same arrays", fontsize=13)
    return pd.DataFrame(rows), fig
