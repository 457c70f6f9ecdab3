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
        try:
            from kedro_datasets.tensorflow import TensorFlowModelDataset  # noqa: PLC0415
        except ImportError:  # a machine without TensorFlow (conf/gpu under JAX)
            TensorFlowModelDataset = ()  # noqa: N806 - matches nothing in isinstance

        from cifar10_kedro.datasets import KerasModelDataset  # noqa: PLC0415
        from cifar10_kedro.datasets.keras_model_dataset import (  # noqa: PLC0415
            load_keras_file,
        )
        from cifar10_kedro.params_schema import validate_parameters  # noqa: PLC0415

        # The merged parameters of the run: conf/base, the environment and --params.
        validate_parameters(catalog.load("parameters"))
        logger.info("Parameters match the schema (cifar10_kedro.params_schema).")
        for name in sorted(pipeline.inputs()):
            dataset = catalog.get(name)
            if isinstance(dataset, KerasModelDataset):
                catalog.load(name)
            elif isinstance(dataset, TensorFlowModelDataset):
                # Its own errors name a temporary copy: open the real file ourselves.
                path = str(dataset._get_load_path())  # noqa: SLF001
                args = dataset._load_args  # noqa: SLF001
                load_keras_file(
                    path, path, {k: v for k, v in args.items() if k != "tf_device"}
                )
            else:
                continue
            logger.info("'%s' loads in Keras' safe mode.", name)
