"""The figures a run records as MLflow metrics: per epoch, and once at the end."""

from __future__ import annotations

import math
import re
from typing import Any

# What each epoch records (the history's columns, but the epoch itself and `best`).
EPOCH_METRICS = (
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "seconds",
)


def _key(name: str) -> str:
    """An MLflow metric name: letters, digits and ``_ - . /`` only."""
    return re.sub(r"[^\w\-./]", "_", name)


def _scores(prefix: str, scores: dict[str, Any]) -> dict[str, float]:
    found = {
        f"{prefix}_accuracy": scores.get("accuracy"),
        f"{prefix}_log_loss": scores.get("log_loss"),
        # Calibration, where the report has it.
        f"{prefix}_ece": scores.get("expected_calibration_error"),
    }
    return {k: float(v) for k, v in found.items() if v is not None}


def tracked_scores(
    test_metrics: dict[str, Any], validation_metrics: dict[str, Any]
) -> dict[str, dict[str, float]]:
    """Return the run's final figures as kedro-mlflow's metrics history expects them
    (``{name: {"value": v, "step": 0}}``): on the test set plain (``test_accuracy``,
    ``test_log_loss``, ``test_ece``), with test-time augmentation (``test_tta_*``),
    the macro and per-class F1 (``test_macro_f1``, ``test_f1_<class>``), and the same
    plain and TTA figures on the validation split (``validation_*``)."""
    values = _scores("test", test_metrics)
    if "tta" in test_metrics:
        values |= _scores("test_tta", test_metrics["tta"])
    if "macro_avg" in test_metrics:
        values["test_macro_f1"] = float(test_metrics["macro_avg"]["f1-score"])
    for name, scores in test_metrics.get("per_class", {}).items():
        values[_key(f"test_f1_{name}")] = float(scores["f1-score"])
    values |= _scores("validation", validation_metrics)
    if "tta" in validation_metrics:
        values |= _scores("validation_tta", validation_metrics["tta"])
    return {
        name: {"value": value, "step": 0}
        for name, value in values.items()
        if math.isfinite(value)
    }
