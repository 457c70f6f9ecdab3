"""Typed parameters of the ``export`` pipeline (``params:export``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from cifar10_kedro.params_base import (
    NonNegativeFloat,
    Params,
    PositiveFloat,
    PositiveInt,
)


class ExportParams(Params):
    """How the exported graphs are checked against the Keras model."""

    batch_size: PositiveInt
    # The exported graph against the float32 Keras copy it came from, on the test set.
    min_argmax_agreement: Annotated[float, Field(gt=0, le=1)]
    max_probability_difference: PositiveFloat
    # The exported graph against the model as trained (e.g. mixed bfloat16), in
    # accuracy points; above it the run warns (precision differs by design).
    max_accuracy_difference_points: NonNegativeFloat
