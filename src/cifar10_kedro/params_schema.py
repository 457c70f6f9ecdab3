"""The whole parameter tree, checked once before a run for what Kedro does not check.

Kedro validates each typed ``params:`` input of a node (the groups in each pipeline's
``params.py``) when it builds the catalog. What remains is checked here, by the
preflight hook: keys outside any typed group (a misspelt group, a stray key under
``model_training``) and the seeds. Every problem is reported at once, with its dotted
key, before anything runs or is written.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from cifar10_kedro.params_base import InvalidParametersError, Params, describe_errors
from cifar10_kedro.pipelines.data_ingestion.params import DataIngestionParams
from cifar10_kedro.pipelines.export.params import ExportParams
from cifar10_kedro.pipelines.inference.params import InferenceParams
from cifar10_kedro.pipelines.model_training.params import ModelTrainingParams
from cifar10_kedro.pipelines.reporting.params import ReportingParams
from cifar10_kedro.serving.params import ServingParams


class VariantParams(Params):
    """A configuration trained beside the default (``kedro run --pipeline compare``)."""

    model_training: ModelTrainingParams
    reporting: ReportingParams
    # Models in their own modules; absent groups are checked when their pipeline runs.
    inference: InferenceParams | None = None
    export: ExportParams | None = None
    serving: ServingParams | None = None


class Parameters(Params):
    data_ingestion: DataIngestionParams
    model_training: ModelTrainingParams
    reporting: ReportingParams
    # The notebook's configuration, as the `notebook` variant of the compare pipeline.
    notebook: VariantParams
    # Using the trained model: the inference and export pipelines, `kedro serve`.
    inference: InferenceParams | None = None
    export: ExportParams | None = None
    serving: ServingParams | None = None


def validate_parameters(parameters: dict[str, Any]) -> Parameters:
    """Return the checked parameters or raise one error listing every problem."""
    try:
        # Not Parameters.model_validate: its errors carry no "fix them" advice.
        return Parameters(**parameters)
    except ValidationError as exc:
        problems = describe_errors(exc, Parameters)
        raise InvalidParametersError(
            f"{len(exc.errors())} invalid parameter(s); fix them in "
            "conf/<env>/parameters_*.yml or --params (nothing was run or written):\n"
            + problems
        ) from None
    except TypeError as exc:  # not a mapping at all
        raise InvalidParametersError(f"parameters: {exc}") from None
