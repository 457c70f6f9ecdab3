"""The compare pipeline's variants, each declared once in ``conf/base/globals.yml``.

A variant is a configuration that ``kedro run --pipeline compare`` trains and reports
beside the default, on the same arrays: the changes it makes to ``model_training`` and
``reporting``, under ``variants.<name>`` in ``conf/base/globals.yml``. Everything else is
derived from that entry:

* its parameters: ``ProjectConfigLoader`` (the project's ``CONFIG_LOADER_CLASS``) adds
  ``<name>: {model_training, reporting}``, the run's own groups (its environment and
  ``--params`` included) with the variant's changes merged in key by key, then what the
  environment or ``--params`` set under ``<name>`` itself (``conf/smoke`` shortens the
  notebook's training so);
* its nodes: the compare pipeline namespaces ``model_training`` and ``reporting`` under
  each name of ``variant_names()``, their datasets under ``<name>.`` (the catalog's
  dataset factories);
* its schema: ``params_schema`` checks ``<name>`` as a ``VariantParams``.

Globals, not parameters: every environment reads them, so an environment can apply a
variant's changes as its whole configuration (``conf/notebook`` does).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader

from cifar10_kedro.params_base import InvalidParametersError

# The groups a variant holds: what the compare pipeline runs again for it. The arrays
# (data_ingestion) are shared.
GROUPS = ("model_training", "reporting")
# Where the variants are declared, in the globals of conf/base.
KEY = "variants"


def merged(base: Any, changes: Any) -> Any:
    """Return a copy of ``base`` with ``changes`` merged in key by key (a mapping
    within a mapping is merged; anything else, a list included, replaces)."""
    if not (isinstance(base, dict) and isinstance(changes, dict)):
        return copy.deepcopy(changes)
    result = copy.deepcopy(base)
    for key, value in changes.items():
        result[key] = merged(result.get(key), value)
    return result


def _check(name: Any, changes: Any, parameters: dict[str, Any]) -> None:
    where = f"globals {KEY}.{name}"
    if not isinstance(name, str) or not name.isidentifier():
        raise InvalidParametersError(
            f"{where}: a variant's name names its parameters, nodes and outputs; "
            "expected a Python identifier (letters, digits, _)"
        )
    own = parameters.get(name)
    if isinstance(own, dict) and not set(own) <= set(GROUPS):
        raise InvalidParametersError(
            f"{where}: '{name}' is the name of a parameter group; expected another name"
        )
    if not isinstance(changes, dict) or not set(changes) <= set(GROUPS):
        found = sorted(changes) if isinstance(changes, dict) else repr(changes)
        raise InvalidParametersError(
            f"{where}: expected the changes to some of {list(GROUPS)} (the groups the "
            f"compare pipeline runs again); got {found}"
        )


def with_variants(
    parameters: dict[str, Any], variants: dict[str, Any] | None
) -> dict[str, Any]:
    """Return ``parameters`` with every variant of ``variants`` (name: changes) added
    under its name, as the module's docstring says."""
    if not variants:
        return parameters
    if not isinstance(variants, dict):
        raise InvalidParametersError(
            f"globals {KEY}: expected a mapping of each variant's name to its "
            f"changes; got {variants!r}"
        )
    result = dict(parameters)
    for name, changes in variants.items():
        _check(name, changes, parameters)
        derived = {
            group: merged(parameters.get(group, {}), changes.get(group) or {})
            for group in GROUPS
        }
        result[name] = merged(derived, parameters.get(name) or {})
    return result


class ProjectConfigLoader(OmegaConfigLoader):
    """Kedro's ``OmegaConfigLoader`` whose parameters hold every variant of the
    compare pipeline too (``with_variants``)."""

    def __getitem__(self, key: str) -> dict[str, Any]:
        config = super().__getitem__(key)
        if key != "parameters":
            return config
        return with_variants(config, self["globals"].get(KEY))


def variant_names(project_path: Path | str | None = None) -> tuple[str, ...]:
    """Return the names of the variants in ``conf/base/globals.yml``, in order, of
    the project at ``project_path`` (by default the Kedro project around the working
    directory, found as the ``kedro`` command finds it, else the source checkout of
    this package).

    The compare pipeline needs them to be built, and Kedro builds pipelines before it
    loads any configuration in some commands (kedro issue #3093), so they are read here
    from conf/base alone: an environment can change a variant's values, not add one
    (the schema names such a key as unknown). The file is parsed, not loaded with a
    config loader: a loader registers OmegaConf's ``globals`` resolver for the whole
    process, and a second one, made while a session runs, would resolve that session's
    catalog with conf/base's globals (its outputs under ``data/``, whatever the --env).
    """
    from kedro.framework.project import settings  # noqa: PLC0415
    from kedro.utils import find_kedro_project  # noqa: PLC0415
    from omegaconf import OmegaConf  # noqa: PLC0415

    root = (
        project_path
        or find_kedro_project(Path.cwd())
        or find_kedro_project(Path(__file__).resolve().parent)
    )
    if root is None:
        raise InvalidParametersError(
            f"No Kedro project around {Path.cwd()}, so the compare pipeline's variants "
            f"(conf/base/globals.yml, '{KEY}') cannot be read; expected to run from "
            "the project's folder"
        )
    base_env = settings.CONFIG_LOADER_ARGS.get("base_env", "base")
    path = Path(root) / settings.CONF_SOURCE / base_env / "globals.yml"
    declared = OmegaConf.load(path).get(KEY) if path.is_file() else None
    return tuple(declared or ())
