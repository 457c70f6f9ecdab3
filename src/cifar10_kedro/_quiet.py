"""Quiet known third-party noise on the first screen of a run, never the project's own.

Called from the package's ``__init__``, which every entry point imports before TensorFlow:
``kedro`` commands (through ``settings.py``), ``python -m cifar10_kedro``, ``kedro jupyter``
and ``kedro viz``, the benchmarks and the tests. Log levels are in ``conf/logging.yml``.
"""

from __future__ import annotations

import ctypes.util
import os
import warnings


def quiet_third_party_noise() -> None:
    """Set TensorFlow's C++ log level (unless the user did) and hide one known warning."""
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        # 2 hides TensorFlow's C++ INFO and WARNING lines (CPU-feature banners and the
        # like). Without a CUDA driver its GPU probe fails by design and logs ERRORs
        # ("failed call to cuInit", "Unable to register cuDNN factory"): 3 hides those.
        # With a driver they are real errors, so they stay.
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = (
            "2" if ctypes.util.find_library("cuda") else "3"
        )
    # omegaconf 2.4 deprecated register_new_resolver(), which Kedro's OmegaConfigLoader
    # calls several times per session: nothing this project can change. Hidden only where
    # Kedro calls it, so the same warning from any other code still shows.
    warnings.filterwarnings(
        "ignore",
        message=r"register_new_resolver\(\) is deprecated",
        category=UserWarning,
        module=r"kedro\.config\.omegaconf_config",
    )
