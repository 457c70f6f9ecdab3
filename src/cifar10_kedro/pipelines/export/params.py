"""The ``export`` parameters (conf/base/parameters_export.yml)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class ExportParams(BaseModel):
    # As params_schema's groups: no silent coercion, no unknown keys.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    batch_size: Annotated[int, Field(gt=0)]
    # The exported graph against the float32 Keras copy it came from, on the test set.
    min_argmax_agreement: Annotated[float, Field(gt=0, le=1)]
    max_probability_difference: Annotated[float, Field(gt=0)]
    # The exported graph against the model as trained (e.g. mixed bfloat16), in
    # accuracy points; above it the run warns (precision differs by design).
    max_accuracy_difference_points: Annotated[float, Field(ge=0)]
