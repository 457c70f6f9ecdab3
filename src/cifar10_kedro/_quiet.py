"""Quiet known third-party noise on the first screen of a run, never the project's own.

Called from the package's ``__init__``, which every entry point imports before TensorFlow:
``kedro`` commands (through ``settings.py``), ``python -m cifar10_kedro``, ``kedro jupyter``
and ``kedro viz``, the benchmarks and the tests. Log levels are in ``conf/logging.yml``.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import importlib.abc
import importlib.machinery
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator

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


# Lines TensorFlow's C++ core writes to stderr while it is imported, before its log
# level applies (absl logs before InitializeLog regardless of TF_CPP_MIN_LOG_LEVEL), once
# for each of its two shared libraries: notices, not errors, on every CPU-only machine.
IMPORT_NOISE = (
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called",
    r"\] oneDNN custom operations are on\.",
    r"\] Could not find cuda drivers on your machine, GPU will not be used\.",
)


def quiet_third_party_noise() -> None:
    """Set TensorFlow's C++ log level (unless the user did) and hide its import
    notices (unless that level is 0); hide KNOWN_WARNINGS."""
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        # 2 hides TensorFlow's C++ INFO and WARNING lines (CPU-feature banners and the
        # like). Without a CUDA driver its GPU probe fails by design and logs ERRORs
        # ("failed call to cuInit", "Unable to register cuDNN factory"): 3 hides those.
        # With a driver they are real errors, so they stay.
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = (
            "2" if ctypes.util.find_library("cuda") else "3"
        )
    # The import notices are INFO lines (and absl's warning about them): shown only at
    # level 0, TensorFlow's "everything". A child process inherits the level set here.
    if (
        os.environ["TF_CPP_MIN_LOG_LEVEL"] != "0"
        and "tensorflow" not in sys.modules
        and not any(isinstance(f, QuietTensorFlowImport) for f in sys.meta_path)
    ):
        sys.meta_path.insert(0, QuietTensorFlowImport())
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


@contextlib.contextmanager
def filtered_stderr(noise: tuple[str, ...] = IMPORT_NOISE) -> Iterator[None]:
    """Capture what is written to file descriptor 2 (C++ code included) inside the
    block, then write it back to stderr without the lines that match ``noise``: every
    other line, an error above all, still shows."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            kept = [x for x in lines if not any(re.search(p, x) for p in noise)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as the other finders do, once, and imports it inside
    ``filtered_stderr``: wherever TensorFlow is first imported (Keras' backend, a
    notebook, MLflow), its import notices stay off the screen."""

    def find_spec(self, fullname, path, target=None):  # noqa: ANN001, ANN201 - the protocol's
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once; the real finders do the finding
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _FilteredLoader(spec.loader)
        return spec


class _FilteredLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):  # noqa: ANN001, ANN201 - the protocol's
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:  # noqa: ANN001
        # TensorFlow's own loader again, for whatever asks it later (resources, source).
        module.__loader__ = module.__spec__.loader = self._loader
        with filtered_stderr():
            self._loader.exec_module(module)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._loader, name)
