"""Typed parameters of the ``reporting`` pipeline (``params:reporting``)."""

from __future__ import annotations

from cifar10_kedro.params_base import NonNegativeInt, Params, PositiveInt


class TTAParams(Params):
    """Test-time augmentation: the prediction for an image is the weighted mean over
    the image (weight 1), its four diagonal shifts by ``translate`` pixels (borders
    reflected, weight 1/2 each; 0 for none) and, with ``flip``, the mirror of each."""

    flip: bool
    translate: NonNegativeInt


class ReportingParams(Params):
    """How the trained model is evaluated and reported."""

    batch_size: PositiveInt
    tta: TTAParams
    # How many of the most confident test mistakes to show.
    mistakes_to_show: PositiveInt
    # Confidence bins of the reliability diagram and the expected calibration error.
    calibration_bins: PositiveInt
