"""Quiet known third-party noise on the first screen of a run, never the project's own.

Called from the package's ``__init__``, which every entry point imports before TensorFlow:
``kedro`` commands (through ``settings.py``), ``python -m cifar10_kedro``, ``kedro jupyter``
and ``kedro viz``, the benchmarks and the tests. Log levels are in ``conf/logging.yml``.
"""

from __future__ import annotations

import ctypes.util
import logging
import os
import warnings

# (message, module that raises it): each hidden only where that library raises it, so the
# same warning from any other code (the project's included) still shows.
KNOWN_WARNINGS = (
    # omegaconf 2.4 deprecated register_new_resolver(), which Kedro's OmegaConfigLoader
    # calls several times a session: nothing this project can change.
    (r"register_new_resolver\(\) is deprecated", r"kedro\.config\.omegaconf_config"),
    # The same, from kedro-mlflow's hook, which registers its own resolver once.
    (
        r"register_new_resolver\(\) is deprecated",
        r"kedro_mlflow\.framework\.hooks\.mlflow_hook",
    ),
)


def quiet_third_party_noise() -> None:
    """Set TensorFlow's C++ log level (unless the user did); hide KNOWN_WARNINGS."""
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        # 2 hides TensorFlow's C++ INFO and WARNING lines (CPU-feature banners and the
        # like). Without a CUDA driver its GPU probe fails by design and logs ERRORs
        # ("failed call to cuInit", "Unable to register cuDNN factory"): 3 hides those.
        # With a driver they are real errors, so they stay.
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = (
            "2" if ctypes.util.find_library("cuda") else "3"
        )
    for message, module in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message, UserWarning, module)
    shown = logging.getLogger("py.warnings")
    if not any(isinstance(f, KnownLoggedWarnings) for f in shown.filters):
        shown.addFilter(KnownLoggedWarnings())


# Warnings that a library shows despite the filters above, hidden where they reach the
# screen: the ``py.warnings`` logger, which Kedro sends warnings to (its configuration,
# conf/logging.yml, names no filters, so this one stays).
KNOWN_LOGGED_WARNINGS = (
    # MLflow asks every PythonModel subclass for type hints on `predict`, under its own
    # "once" filter (so no filter of ours applies); kedro-mlflow's KedroPipelineModel has
    # none, and Kedro imports it with the plugin's commands on every `kedro` command.
    "Add type hints to the `predict` method",
)


class KnownLoggedWarnings(logging.Filter):
    """Drops the KNOWN_LOGGED_WARNINGS records; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(known in message for known in KNOWN_LOGGED_WARNINGS)
