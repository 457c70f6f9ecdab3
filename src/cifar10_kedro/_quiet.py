"""Quiet known third-party noise on the first screen of a run, never the project's own.

Called from the package's ``__init__``, which every entry point imports before TensorFlow:
``kedro`` commands (through ``settings.py``), ``python -m cifar10_kedro``, ``kedro jupyter``
and ``kedro viz``, the benchmarks and the tests. Log levels are in ``conf/logging.yml``.
"""

from __future__ import annotations

import ctypes.util
import os
import warnings

# (message, module that raises it): each hidden only where that library raises it, so the
# same warning from any other code (the project's included) still shows.
KNOWN_WARNINGS = (
    # omegaconf 2.4 deprecated register_new_resolver(), which Kedro's OmegaConfigLoader
    # calls several times a session: nothing this project can change.
    (r"register_new_resolver\(\) is deprecated", r"kedro\.config\.omegaconf_config"),
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
