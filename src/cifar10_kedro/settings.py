"""Project settings. There is no need to edit this file unless you want to change values
from the Kedro defaults. For further information, including these default values, see
https://docs.kedro.org/en/stable/configure/configuration_basics/#configuration"""

# Instantiated project hooks.
# Hooks are executed in a Last-In-First-Out (LIFO) order.
from cifar10_kedro.hooks import (  # noqa: E402
    DistributionHooks,
    PreflightHooks,
    TrainingCheckpointHooks,
)
from cifar10_kedro.launch import process_index_from_environment  # noqa: E402
from cifar10_kedro.model_version import TrainedModelVersionHook  # noqa: E402
from cifar10_kedro.tracking import TrackingHook  # noqa: E402

# Parameters and loaded models are checked before a run; then (LIFO: registered first,
# called last) data-parallel training is set up; a finished training's resume
# checkpoint is deleted once its outputs are saved; pipelines that read
# trained_model_version get the version trained_model loads; every run is recorded in
# MLflow (conf/base/mlflow.yml). TrackingHook comes first so that it runs last: a run
# that the checks stop starts no MLflow run. Under multi-process data parallelism
# process 0 alone tracks the run: the others (their id from kedro launch, srun or
# mpirun) register no tracking hook.
TRACKING_HOOKS = (TrackingHook(),) if process_index_from_environment() == 0 else ()
HOOKS = (
    *TRACKING_HOOKS,
    DistributionHooks(),
    PreflightHooks(),
    TrainingCheckpointHooks(),
    TrainedModelVersionHook(),
)

# Installed plugins for which to disable hook auto-registration: kedro-mlflow's hook
# runs inside TrackingHook, which makes it safe and adds to it.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow", "kedro_mlflow")

# Class that manages the KedroSession.
# from kedro.framework.session import KedroSession
# SESSION_CLASS = KedroSession

# Class that manages storing KedroSession data.
# from kedro.framework.session.store import BaseSessionStore
# SESSION_STORE_CLASS = BaseSessionStore
# Keyword arguments to pass to the `SESSION_STORE_CLASS` constructor.
# SESSION_STORE_ARGS = {
#     "path": "./sessions"
# }

# Directory that holds configuration.
# CONF_SOURCE = "conf"

from omegaconf.resolvers import oc  # noqa: E402

from cifar10_kedro.variants import ProjectConfigLoader  # noqa: E402

# Class that manages how configuration is loaded: Kedro's OmegaConfigLoader, whose
# parameters also hold the compare pipeline's variants (conf/base/globals.yml).
CONFIG_LOADER_CLASS = ProjectConfigLoader

# Keyword arguments to pass to the `CONFIG_LOADER_CLASS` constructor.
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Environments (smoke, notebook, local) override single parameters (and settings of
    # mlflow.yml), not whole groups.
    "merge_strategy": {"parameters": "soft", "globals": "soft", "mlflow": "soft"},
    # CIFAR10_RAW_PATH points the raw catalog entry at a local copy in every environment.
    "custom_resolvers": {"oc.env": oc.env},
    # kedro-mlflow's configuration (conf/<env>/mlflow.yml), read by TrackingHook.
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]},
}

# Class that manages Kedro's library components.
# from kedro.framework.context import KedroContext
# CONTEXT_CLASS = KedroContext

# Class that manages the Data Catalog.
# from kedro.io import DataCatalog
# DATA_CATALOG_CLASS = DataCatalog
