"""Typed parameters of the ``inference`` pipeline (``params:inference``), also read by
``kedro serve`` and the MLflow model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from cifar10_kedro.params_base import Params, PositiveInt, UnitFloat


class ContactSheetParams(Params):
    max_images: PositiveInt
    columns: PositiveInt
    low_confidence: UnitFloat


class InferenceParams(Params):
    """Which images are classified and how (``kedro run --pipeline inference``)."""

    # Read by the catalog entry inference_images; given per run with --params.
    input_path: str | None
    resize: Literal["crop", "pad", "stretch"]
    on_error: Literal["skip", "fail"]
    batch_size: PositiveInt
    top_k: Annotated[int, Field(ge=1, le=10)]
    max_pixels: PositiveInt
    workers: PositiveInt | None
    contact_sheet: ContactSheetParams

    @field_validator("input_path", mode="before")
    @classmethod
    def _path_as_text(cls, value: object) -> object:
        # --params parses a folder named 2024 as a number.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value
