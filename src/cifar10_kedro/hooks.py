"""Project hooks: check a run's parameters and models before any node writes anything."""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)


class PreflightHooks:
    """Fails a run early, before its first node, so that a bad input writes nothing.

    * every parameter is checked against ``cifar10_kedro.params_schema``, and all the
      problems are reported at once;
    * every model the run loads rather than produces (``trained_model`` for
      ``--pipeline reporting``) is opened first, in Keras' safe mode: otherwise a bad
      model file would fail only after nodes that do not need it had saved plots.
    """

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        # Imported here: settings.py imports this module for every kedro command, and
        # these import Keras.
        from cifar10_kedro.datasets import KerasModelDataset  # noqa: PLC0415
        from cifar10_kedro.params_schema import validate_parameters  # noqa: PLC0415

        # The merged parameters of the run: conf/base, the environment and --params.
        validate_parameters(catalog.load("parameters"))
        logger.info("Parameters match the schema (cifar10_kedro.params_schema).")
        for name in sorted(pipeline.inputs()):
            if isinstance(catalog.get(name), KerasModelDataset):
                catalog.load(name)
                logger.info("'%s' loads in Keras' safe mode.", name)
