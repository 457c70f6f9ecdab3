"""Typed parameters of the ``export`` pipeline (``params:export``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from cifar10_kedro.params_base import (
    NonNegativeFloat,
    Params,
    PositiveFloat,
    PositiveInt,
)


class Int8Params(Params):
    """The int8 ONNX graph: onnxruntime's static quantization of the float32 graph."""

    # Validation images that calibrate the activations' ranges (never test images).
    calibration_images: PositiveInt
    # 7-bit weights. CPUs without VNNI multiply int8 in 16-bit sums that saturate on
    # full-range weights (AVX2's u8s8 kernels); with VNNI, full range keeps the
    # accuracy and 7 bits lose it. auto: true unless this CPU has VNNI.
    reduce_range: bool | Literal["auto"]
    # The run fails when the int8 graph's test accuracy is more than this many points
    # below the float32 graph's.
    max_accuracy_drop_points: NonNegativeFloat


class ExportParams(Params):
    """How the exported graphs are made and checked against the Keras model."""

    batch_size: PositiveInt
    # The exported graph against the float32 Keras copy it came from, on the test set.
    min_argmax_agreement: Annotated[float, Field(gt=0, le=1)]
    max_probability_difference: PositiveFloat
    # The exported graph against the model as trained (e.g. mixed bfloat16), in
    # accuracy points; above it the run warns (precision differs by design).
    max_accuracy_difference_points: NonNegativeFloat
    int8: Int8Params
