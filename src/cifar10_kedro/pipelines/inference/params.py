"""The ``inference`` parameters (conf/base/parameters_inference.yml), checked by Kedro
before a run (node inputs typed with these models) and by the preflight hook."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PositiveInt = Annotated[int, Field(gt=0)]
UnitFloat = Annotated[float, Field(ge=0, le=1)]


class _Strict(BaseModel):
    # As params_schema's groups: no silent coercion, no unknown keys.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ContactSheetParams(_Strict):
    max_images: PositiveInt
    columns: PositiveInt
    low_confidence: UnitFloat


class InferenceParams(_Strict):
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
