"""The ``serving`` parameters (conf/base/parameters_serving.yml) of `kedro serve`."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

PositiveInt = Annotated[int, Field(gt=0)]


class ServingParams(BaseModel):
    # As params_schema's groups: no silent coercion, no unknown keys.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    max_request_bytes: PositiveInt
    max_images: PositiveInt
    # Concurrent requests are predicted together, up to this many images at once.
    max_batch_images: PositiveInt
    # Threads that decode uploaded images (null: one per core).
    decode_workers: PositiveInt | None
    # The environment variable holding the API token; unset or empty: no token.
    token_env_var: Annotated[str, Field(min_length=1)]
