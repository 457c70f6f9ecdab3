"""The whole parameter tree, checked once before a run for what Kedro does not check.

Kedro validates each typed ``params:`` input of a node (the groups in each pipeline's
``params.py``) when it builds the catalog. What remains is checked here, by the
preflight hook: every group is there, keys outside any typed group (a misspelt group, a
stray key under ``model_training``), the groups no node of the run reads, and the
compare pipeline's variants (``cifar10_kedro.variants``). Every problem is reported at
once, with its dotted key, before anything runs or is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from pydantic import ValidationError, create_model

from cifar10_kedro.params_base import InvalidParametersError, Params, describe_errors
from cifar10_kedro.pipelines.data_ingestion.params import DataIngestionParams
from cifar10_kedro.pipelines.export.params import ExportParams
from cifar10_kedro.pipelines.inference.params import InferenceParams
from cifar10_kedro.pipelines.model_training.params import ModelTrainingParams
from cifar10_kedro.pipelines.reporting.params import (
    ReportingParams,
    TTASelectionParams,
)
from cifar10_kedro.serving.params import ServingParams
from cifar10_kedro.variants import variant_names


class VariantParams(Params):
    """A configuration trained beside the default (``kedro run --pipeline compare``):
    the groups of ``cifar10_kedro.variants.GROUPS``."""

    model_training: ModelTrainingParams
    reporting: ReportingParams


class Parameters(Params):
    """Every group of conf/base/parameters_*.yml; ``schema`` adds the variants."""

    data_ingestion: DataIngestionParams
    model_training: ModelTrainingParams
    reporting: ReportingParams
    tta_selection: TTASelectionParams
    # Using the trained model: the inference and export pipelines, `kedro serve`.
    inference: InferenceParams
    export: ExportParams
    serving: ServingParams


@cache
def schema(variants: tuple[str, ...]) -> type[Parameters]:
    """Return ``Parameters`` with a ``VariantParams`` for each name of ``variants``."""
    return create_model(
        "Parameters",
        __base__=Parameters,
        __module__=__name__,
        **{name: (VariantParams, ...) for name in variants},
    )


def validate_parameters(
    parameters: dict[str, Any], variants: Iterable[str] | None = None
) -> Parameters:
    """Return the checked parameters or raise one error listing every problem.

    ``variants``: the names of the compare pipeline's variants; by default those of
    the project (``cifar10_kedro.variants.variant_names``).
    """
    model = schema(tuple(variant_names() if variants is None else variants))
    try:
        # Not model.model_validate: its errors carry no "fix them" advice.
        return model(**parameters)
    except ValidationError as exc:
        problems = describe_errors(exc, model)
        raise InvalidParametersError(
            f"{len(exc.errors())} invalid parameter(s); fix them in "
            "conf/<env>/parameters_*.yml or --params (nothing was run or written):\n"
            + problems
        ) from None
    except TypeError as exc:  # not a mapping at all
        raise InvalidParametersError(f"parameters: {exc}") from None
