"""Project hooks: check every parameter once, before a run starts."""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl

from cifar10_kedro.params_schema import validate_parameters

logger = logging.getLogger(__name__)


class ParameterValidationHooks:
    """Fails a run whose parameters do not match ``params_schema``, before any node."""

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        # The merged parameters of the run: conf/base, the environment and --params.
        validate_parameters(catalog.load("parameters"))
        logger.info("Parameters match the schema (cifar10_kedro.params_schema).")
