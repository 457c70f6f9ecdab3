"""Typed parameters of the ``reporting`` pipeline (``params:reporting``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cifar10_kedro.params_base import NonNegativeInt, Params, PositiveFloat, PositiveInt


class TTAParams(Params):
    """Test-time augmentation: the prediction for an image is the weighted mean over
    the image (weight 1), its diagonal shifts by ``translate`` pixels (borders
    reflected, weight 1/2 each; 0 for none) and, with ``flip``, the mirror of each.
    ``shifts``: 4, one to each corner, or 2, up-left and down-right (airbench's: with
    ``flip``, 6 views instead of 10)."""

    flip: bool
    translate: NonNegativeInt
    shifts: Literal[2, 4]


class TemperatureParams(Params):
    """Temperature scaling: the probabilities' logits are divided by the temperature
    that minimises the log loss on the validation split, searched in [min, max]."""

    min: PositiveFloat
    max: PositiveFloat

    @model_validator(mode="after")
    def _a_range(self) -> TemperatureParams:
        if self.min >= self.max:
            raise ValueError(
                f"min is {self.min} and max {self.max}; expected min below max"
            )
        return self


class ReportingParams(Params):
    """How the trained model is evaluated and reported."""

    batch_size: PositiveInt
    tta: TTAParams
    # How many of the most confident test mistakes to show.
    mistakes_to_show: PositiveInt
    # Confidence bins of the reliability diagram and the expected calibration error.
    calibration_bins: PositiveInt
    temperature: TemperatureParams


class TTASelectionParams(Params):
    """The test-time augmentations that ``kedro run --pipeline tta_selection`` scores
    on the validation split, by name."""

    candidates: dict[str, TTAParams] = Field(min_length=1)
