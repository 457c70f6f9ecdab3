"""Typed parameters of ``kedro serve`` (``params:serving``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from cifar10_kedro.params_base import NonEmptyStr, Params, PositiveInt


class ServingParams(Params):
    """Where the HTTP service listens and what it accepts."""

    # What predicts: the trained Keras model, or the int8 ONNX graph that
    # `kedro run --pipeline export` wrote for its version (onnxruntime). --engine
    # overrides it for one start.
    engine: Literal["keras", "onnx_int8"]
    # --host and --port override them for one start.
    host: NonEmptyStr
    port: Annotated[int, Field(ge=1, le=65535)]
    max_request_bytes: PositiveInt
    max_images: PositiveInt
    # Concurrent requests are predicted together, up to this many images at once.
    max_batch_images: PositiveInt
    # Threads that decode uploaded images (null: one per core).
    decode_workers: PositiveInt | None
    # The environment variable holding the API token; unset or empty: no token.
    token_env_var: NonEmptyStr
