"""The node that scores each candidate test-time augmentation on the validation split."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from cifar10_kedro.pipelines.reporting.nodes import (
    combine_views,
    predict_views,
    scores,
    tta_views,
)
from cifar10_kedro.pipelines.reporting.params import ReportingParams, TTASelectionParams


def select_tta(
    model: keras.Model,
    x_val: np.ndarray,
    y_val: np.ndarray,
    selection: TTASelectionParams,
    reporting: ReportingParams,
) -> dict[str, Any]:
    """Return each candidate's validation scores (accuracy, log loss, calibration
    error, its views), the best (highest accuracy; of equals, the fewest views), and
    whether ``reporting.tta``, what the reports use, is it.

    Each view is predicted once, whatever number of candidates use it.
    """
    candidates = selection.candidates
    needed = sorted({view for tta in candidates.values() for view in tta_views(tta)})
    views = predict_views(model, x_val, needed, reporting.batch_size)
    options = {
        name: {
            **tta.model_dump(),
            "views": len(tta_views(tta)),
            **scores(combine_views(views, tta), y_val, reporting.calibration_bins),
        }
        for name, tta in candidates.items()
    }
    best = max(options, key=lambda n: (options[n]["accuracy"], -options[n]["views"]))
    configured = [name for name, tta in candidates.items() if tta == reporting.tta]
    return {
        "num_validation_images": int(y_val.size),
        "candidates": options,
        "best": best,
        "configured": configured[0] if configured else None,
        "configured_is_best": best in configured,
    }
