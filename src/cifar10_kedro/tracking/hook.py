"""Every run recorded in MLflow: kedro-mlflow's hook, made safe and told about training.

``TrackingHook`` is kedro-mlflow's ``MlflowHook`` (registered in ``settings.py`` in
place of the plugin's own instance), which starts one MLflow run per ``kedro run``,
logs every parameter the nodes read, lets the catalog's ``Mlflow*`` datasets log
metrics and artifacts, and logs the ``pipeline_ml_factory`` model at the end. On top:

* tracking never costs a result: a store that cannot be reached (or
  ``enabled: false`` in ``mlflow.yml``) gives one warning and a run that records
  nothing; a logging call that fails later is a warning too;
* typed (pydantic) parameters are logged key by key, as dictionaries are;
* the tags that say what was run where: environment, Keras backend, precision, device,
  git commit, package version, the training's fingerprint (the hash the resume check
  uses) and the version of the trained model;
* ``train_model`` gets its Keras callbacks as the node input ``training_callbacks``:
  one that logs every epoch to the run as it ends;
* a training that resumes from its checkpoint continues the MLflow run of the
  interrupted one (found by the fingerprint tag); epochs checkpointed but not yet
  logged are logged from the checkpoint;
* a run that evaluates a saved model without training it (``--pipeline reporting``)
  is recorded as a child run of the run that trained that model version;
* the model logged at the end is registered under the experiment's name, with the
  exact model version of the run as its artifact.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog
from kedro_mlflow.config.kedro_mlflow_config import KedroMlflowConfig
from kedro_mlflow.config.resolvers import resolve_random_name
from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook
from kedro_mlflow.io.catalog.switch_catalog_logging import switch_catalog_logging
from kedro_mlflow.pipeline.pipeline_ml import PipelineML
from omegaconf import OmegaConf
from pydantic import BaseModel

import cifar10_kedro

logger = logging.getLogger(__name__)
# kedro-mlflow sets its loggers to INFO; the model's one line per input is noise.
logging.getLogger("kedro_mlflow.mlflow.kedro_pipeline_model").setLevel(logging.WARNING)

MODEL = "trained_model"
CALLBACKS = "training_callbacks"
PARENT_TAG = "mlflow.parentRunId"
FINGERPRINT_TAG = "training_fingerprint"
MODEL_VERSION_TAG = "trained_model_version"
# The local store's artifacts, beside it in the project folder.
LOCAL_ARTIFACTS = "mlartifacts"
# Seconds to wait for a tracking server before a run goes on without it.
PROBE_TIMEOUT = 5.0
_OFF = {"0", "false", "no", "off", "none", ""}


def is_enabled(value: Any) -> bool:
    """``enabled`` of mlflow.yml: a boolean, or text from an environment variable."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in _OFF


def local_store(uri: str, project_path: Path) -> str:
    """Return ``uri`` with a relative ``sqlite:///`` path made absolute from the
    project folder (MLflow would take it from the current directory)."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        path = uri[len(prefix) :]
        if path and path != ":memory:":
            return prefix + str((project_path / path).resolve())
    return uri


def unreachable(uri: str, timeout: float = PROBE_TIMEOUT) -> str | None:
    """Return why the tracking server at an http(s) ``uri`` cannot be reached, or
    None (also for other stores, which are tried as they are)."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme not in {"http", "https"}:
        return None
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def plain(value: Any) -> Any:
    """A typed (pydantic) parameter group as the dictionary kedro-mlflow flattens."""
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def git_commit(project_path: Path) -> str:
    """The commit checked out in the project folder (``-dirty`` with uncommitted
    changes to tracked files), or "unknown" outside a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args],
            cwd=project_path,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def device() -> str:
    """What trains: "gpu (<name>)" or "cpu (<model>, <n> cores)"."""
    import keras  # noqa: PLC0415

    from cifar10_kedro.pipelines.model_training.nodes import has_gpu  # noqa: PLC0415

    if has_gpu():
        return f"gpu ({_gpu_name(keras.backend.backend())})"
    name = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu ({name}, {os.cpu_count()} cores)"


def _gpu_name(backend: str) -> str:
    try:
        if backend == "jax":
            import jax  # noqa: PLC0415

            return jax.devices()[0].device_kind
        if backend == "torch":
            import torch  # noqa: PLC0415

            return torch.cuda.get_device_name(0)
        import tensorflow as tf  # noqa: PLC0415

        gpu = tf.config.list_physical_devices("GPU")[0]
        return tf.config.experimental.get_device_details(gpu).get("device_name", "?")
    except Exception:  # noqa: BLE001 - a name is only a description
        return "?"


class TrackingHook(MlflowHook):
    """kedro-mlflow's hook with this project's additions (the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.recording = False  # whether this session records at all
        self._warned: set[str] = set()
        self._catalog: Any = None
        self._env = "local"
        self._project_path = Path.cwd()
        self._trains = False

    # ------------------------------------------------------------------ helpers

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message, *args)

    def _failed(self, what: str, exc: Exception) -> None:
        self._warn_once(
            what,
            "MLflow tracking: could not %s (%s: %s); the run goes on and its outputs "
            "are saved as usual.",
            what,
            type(exc).__name__,
            exc,
        )

    # Methods, not properties: pluggy before 1.7 reads every attribute of a hook
    # object when it is registered, before any configuration exists.
    def _client(self) -> Any:
        return self.mlflow_config.server._mlflow_client  # noqa: SLF001

    def _experiment_id(self) -> str:
        return self.mlflow_config.tracking.experiment._experiment.experiment_id  # noqa: SLF001

    # ------------------------------------------------------------ configuration

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        if not OmegaConf.has_resolver("km.random_name"):  # as kedro-mlflow's hook
            # register_new_resolver is deprecated in omegaconf 2.4, and warns.
            register = getattr(OmegaConf, "register_resolver", None)
            register = register or OmegaConf.register_new_resolver
            register("km.random_name", resolve_random_name, use_cache=True)
        loader = context.config_loader
        if "mlflow" not in loader.config_patterns:
            loader.config_patterns.update(
                {"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]}
            )
        try:
            conf = dict(loader["mlflow"])
        except MissingConfigException:
            conf = {}
        self._env = context.env or "local"
        self._project_path = Path(context.project_path)
        enabled = is_enabled(conf.pop("enabled", True))
        server = dict(conf.get("server") or {})
        uri = server.get("mlflow_tracking_uri") or os.environ.get(
            "MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"
        )
        server["mlflow_tracking_uri"] = local_store(uri, self._project_path)
        conf["server"] = server
        if server["mlflow_tracking_uri"].startswith("sqlite:"):
            self._local_artifacts(conf)
        # kedro-mlflow reads the configuration from the loader: this one.
        loader["mlflow"] = conf
        self.recording = False
        if not enabled:
            logger.info(
                "Experiment tracking is off (enabled: false in mlflow.yml, or "
                "CIFAR10_KEDRO_TRACKING=false): this run is not recorded in MLflow."
            )
            self._keep_configuration(context, conf)
            return
        problem = unreachable(server["mlflow_tracking_uri"])
        if problem is None:
            try:
                super().after_context_created(context)
            except Exception as exc:  # noqa: BLE001 - any store failure
                problem = f"{type(exc).__name__}: {exc}"
        if problem is not None:
            self._warn_once(
                "store",
                "MLflow tracking store %s cannot be reached (%s): this run is not "
                "recorded; its outputs are saved as usual. Set MLFLOW_TRACKING_URI or "
                "server.mlflow_tracking_uri in conf/<env>/mlflow.yml, or turn tracking "
                "off with CIFAR10_KEDRO_TRACKING=false.",
                server["mlflow_tracking_uri"],
                problem,
            )
            self._keep_configuration(context, conf)
            return
        self.recording = True

    def _local_artifacts(self, conf: dict[str, Any]) -> None:
        """New experiments of a local SQLite store keep their artifacts in the project
        (MLflow's default would be ./mlruns of the current directory)."""
        tracking = conf.setdefault("tracking", {})
        experiment = tracking.setdefault("experiment", {})
        kwargs = experiment.setdefault("create_experiment_kwargs", {})
        if not kwargs.get("artifact_location"):
            kwargs["artifact_location"] = str(self._project_path / LOCAL_ARTIFACTS)

    def _keep_configuration(self, context: Any, conf: dict[str, Any]) -> None:
        """Keep the validated configuration (``kedro mlflow ui`` reads it) without
        touching the store."""
        try:
            self.mlflow_config = KedroMlflowConfig.model_validate(conf)
            context.__setattr__("mlflow", self.mlflow_config)
        except Exception as exc:  # noqa: BLE001
            self._failed("read mlflow.yml", exc)

    @hook_impl
    def after_catalog_created(self, catalog: Any) -> None:
        """kedro-mlflow's own names the catalog's metric datasets that have no name
        (key or prefix) after their entry; this project names its own."""

    # ----------------------------------------------------------------- the run

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        self._catalog = catalog
        # One hook serves every session of a process: nothing of an earlier run.
        self.run_id = None
        # Dataset factories become datasets when first used: make those of the run
        # now, so that switching their logging on or off reaches them.
        for name in pipeline.datasets():
            catalog.get(name)
        if not self.recording:
            self._is_mlflow_enabled = False
            switch_catalog_logging(catalog, False)
            return
        self._trains = MODEL in pipeline.all_outputs()
        evaluated = None
        if MODEL in pipeline.inputs() and not self._trains:
            evaluated = self._evaluated_model(catalog)
        try:
            super().before_pipeline_run(run_params, pipeline, catalog)
        except Exception as exc:  # noqa: BLE001
            self._failed("start the MLflow run", exc)
            self.recording = self._is_mlflow_enabled = False
            self.run_id = None
            switch_catalog_logging(catalog, False)
            return
        if not self._is_mlflow_enabled:  # a pipeline mlflow.yml does not record
            return
        tags = {
            "environment": self._env,
            "package_version": cifar10_kedro.__version__,
            "git_commit": git_commit(self._project_path),
        }
        tags["mlflow.source.git.commit"] = tags["git_commit"].removesuffix("-dirty")
        if evaluated is not None:
            version, parent = evaluated
            tags[MODEL_VERSION_TAG] = version
            if parent is not None:
                tags[PARENT_TAG] = parent
                logger.info(
                    "MLflow: this run evaluates model version %s; it is recorded as a "
                    "child of run %s, which trained it.",
                    version,
                    parent,
                )
            else:
                logger.info(
                    "MLflow: no recorded run trained model version %s; this run is "
                    "recorded on its own, tagged with that version.",
                    version,
                )
        self._set_tags(tags)

    def _evaluated_model(self, catalog: Any) -> tuple[str, str | None] | None:
        """(the version of trained_model this run loads, the run that trained it)."""
        from cifar10_kedro.model_version import resolve_model_version  # noqa: PLC0415

        try:
            version = resolve_model_version(catalog)
        except Exception:  # noqa: BLE001 - the run itself says there is no model
            return None
        try:
            found = self._client().search_runs(
                [self._experiment_id()],
                filter_string=f"tags.{MODEL_VERSION_TAG} = '{version}'",
                order_by=["attributes.start_time ASC"],
                max_results=50,
            )
        except Exception as exc:  # noqa: BLE001
            self._failed("look up the run that trained the model", exc)
            return version, None
        trained = [r for r in found if PARENT_TAG not in r.data.tags]
        return version, trained[0].info.run_id if trained else None

    def _set_tags(self, tags: dict[str, str]) -> None:
        if self.run_id is None:
            return
        try:
            for key, value in tags.items():
                self._client().set_tag(self.run_id, key, str(value))
        except Exception as exc:  # noqa: BLE001
            self._failed("tag the MLflow run", exc)

    @hook_impl
    def before_node_run(
        self, node: Any, catalog: Any, inputs: dict[str, Any], is_async: bool
    ) -> dict[str, Any] | None:
        if not self.recording or self.run_id is None:
            return None
        params = {k: plain(v) for k, v in inputs.items() if k.startswith("params:")}
        try:
            super().before_node_run(node, catalog, params, is_async)
        except Exception as exc:  # noqa: BLE001
            self._failed("log the node's parameters", exc)
        if node.func.__name__ != "train_model" or not self._is_mlflow_enabled:
            return None
        return self._training_callbacks(node, inputs)

    def _training_callbacks(
        self, node: Any, inputs: dict[str, Any]
    ) -> dict[str, Any] | None:
        from .callbacks import MlflowEpochMetrics  # noqa: PLC0415 - imports Keras

        prefix = f"{node.namespace}." if node.namespace else ""
        config = inputs.get(f"{prefix}training_config")
        fit = inputs.get(f"params:{prefix}model_training.fit")
        if config is None or fit is None or f"{prefix}{CALLBACKS}" not in inputs:
            return None
        state = _checkpoint_state(fit, config)
        if not prefix and state is not None:
            self._continue_interrupted_run(config["fingerprint"], state)
        self._set_tags(
            {
                f"{prefix}{FINGERPRINT_TAG}": config["fingerprint"],
                f"{prefix}precision": config["precision"],
                "keras_backend": config["versions"]["backend"],
                "device": device(),
            }
        )
        callback = MlflowEpochMetrics(self._client(), self.run_id, prefix)
        if state is not None:  # epochs checkpointed but not logged
            callback.log(self._unlogged_epochs(state, prefix))
        return {f"{prefix}{CALLBACKS}": [*inputs[f"{prefix}{CALLBACKS}"], callback]}

    def _continue_interrupted_run(self, fingerprint: str, state: dict) -> None:
        """Make the run of the interrupted training, if recorded, this run's: what
        this run recorded so far (parameters, tags, metrics, artifacts of the nodes
        before training) is copied to it, and the run started for this command is
        deleted."""
        try:
            found = self._client().search_runs(
                [self._experiment_id()],
                filter_string=f"tags.{FINGERPRINT_TAG} = '{fingerprint}'",
                order_by=["attributes.start_time DESC"],
                max_results=20,
            )
            earlier = next(
                (
                    r
                    for r in found
                    if r.info.run_id != self.run_id and r.info.status != "FINISHED"
                ),
                None,
            )
            if earlier is None:
                return
            old, new = earlier.info.run_id, self.run_id
            _copy_run(self._client(), new, earlier)
            # Every entry of the new run off MLflow's stack of active runs, then the
            # interrupted one on it, RUNNING again.
            while (active := mlflow.active_run()) is not None and (
                active.info.run_id == new
            ):
                mlflow.end_run()
            mlflow.start_run(run_id=old, nested=mlflow.active_run() is not None)
            self.run_id = old
            self._client().delete_run(new)
            self._client().set_tag(old, "resumed_at_epoch", str(state["epoch"] + 1))
            logger.info(
                "MLflow: training resumes at epoch %d, so this run continues MLflow "
                "run %s (the interrupted one); the run started for it is deleted.",
                state["epoch"] + 1,
                old,
            )
        except Exception as exc:  # noqa: BLE001
            self._failed("continue the interrupted training's MLflow run", exc)

    def _unlogged_epochs(self, state: dict, prefix: str) -> dict[int, dict]:
        try:
            logged = {
                m.step
                for m in self._client().get_metric_history(
                    self.run_id, f"{prefix}val_accuracy"
                )
            }
        except Exception as exc:  # noqa: BLE001
            self._failed("read the run's epochs", exc)
            return {}
        return {
            int(row["epoch"]): row
            for row in state.get("history", [])
            if int(row["epoch"]) not in logged
        }

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        if not self.recording or not dataset_name.endswith(MODEL):
            return
        try:
            version = self._catalog.get(dataset_name).resolve_save_version()
        except Exception:  # noqa: BLE001 - not versioned
            return
        prefix = dataset_name.removesuffix(MODEL)
        self._set_tags({f"{prefix}{MODEL_VERSION_TAG}": version})

    @hook_impl
    def after_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        if not self.recording or self.run_id is None:
            switch_catalog_logging(catalog, True)
            return
        if isinstance(pipeline, PipelineML):
            if self._trains and self._is_mlflow_enabled:
                self._log_model_and_end(run_params, pipeline, catalog)
                return
            pipeline = pipeline.training  # trains nothing: no model to log
        try:
            super().after_pipeline_run(run_params, pipeline, catalog)
        except Exception as exc:  # noqa: BLE001
            self._failed("end the MLflow run", exc)

    def _log_model_and_end(
        self, run_params: dict[str, Any], pipeline: PipelineML, catalog: Any
    ) -> None:
        """Log and register the inference pipeline with this run's model version
        (kedro-mlflow's hook does, given the model's inputs), then end the run."""
        from .model import model_log_arguments  # noqa: PLC0415

        name = self.mlflow_config.tracking.experiment.name
        try:
            bound = PipelineML(
                pipeline.training.nodes,
                inference=pipeline.inference,
                input_name=pipeline.input_name,
                kpm_kwargs=pipeline.kpm_kwargs,
                log_model_kwargs={
                    **pipeline.log_model_kwargs,
                    **model_log_arguments(),
                    "registered_model_name": name,
                },
            )
            with _quiet_model_logging():
                super().after_pipeline_run(
                    run_params, bound, _pinned_catalog(pipeline.inference, catalog)
                )
        except Exception as exc:  # noqa: BLE001
            self._failed("log the model", exc)
            try:
                mlflow.end_run()
            except Exception as end_exc:  # noqa: BLE001
                self._failed("end the MLflow run", end_exc)
            return
        logger.info(
            "MLflow: the inference pipeline with this run's model is logged and "
            "registered as '%s' (models:/%s/<version>).",
            name,
            name,
        )

    @hook_impl
    def on_pipeline_error(
        self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        if not self.recording or self.run_id is None:
            switch_catalog_logging(catalog, True)
            return
        try:
            super().on_pipeline_error(error, run_params, pipeline, catalog)
        except Exception as exc:  # noqa: BLE001
            self._failed("close the failed MLflow run", exc)


@contextlib.contextmanager
def _quiet_model_logging() -> Iterator[None]:
    """MLflow's progress bars and advice while the model is logged, hidden: the
    model is a pickled KedroPipelineModel by kedro-mlflow's design, and its signature
    is given without an example (an example would be run at logging time)."""
    bar = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    previous = os.environ.get(bar)
    os.environ[bar] = "false"
    pyfunc = logging.getLogger("mlflow.pyfunc")
    level = pyfunc.level
    pyfunc.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*An input example was not provided")
            yield
    finally:
        pyfunc.setLevel(level)
        if previous is None:
            os.environ.pop(bar, None)
        else:
            os.environ[bar] = previous


def _copy_run(client: Any, source: str, target: Any) -> None:
    """Copy what run ``source`` recorded to the run ``target`` (a Run): parameters it
    lacks, tags (but MLflow's own), metric histories and artifacts."""
    import tempfile  # noqa: PLC0415

    from mlflow.entities import Metric, Param, RunTag  # noqa: PLC0415

    data = client.get_run(source).data
    have = target.data.params
    params = [Param(k, v) for k, v in data.params.items() if k not in have]
    tags = [RunTag(k, v) for k, v in data.tags.items() if not k.startswith("mlflow.")]
    metrics = [
        Metric(m.key, m.value, m.timestamp, m.step)
        for key in data.metrics
        for m in client.get_metric_history(source, key)
    ]
    run_id = target.info.run_id
    client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
    if client.list_artifacts(source):
        with tempfile.TemporaryDirectory() as folder:
            local = client.download_artifacts(source, "", folder)
            client.log_artifacts(run_id, local)


def _checkpoint_state(fit: Any, config: dict[str, Any]) -> dict | None:
    """The checkpoint that ``train_model`` will resume from, if any."""
    from cifar10_kedro.pipelines.model_training.training_state import (  # noqa: PLC0415
        STATE_FILE,
        checkpoint_directory,
    )

    if not getattr(fit, "resume", False):
        return None
    path = checkpoint_directory(fit.checkpoint.state_dir, config) / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if state.get("config") == config else None


def _pinned_catalog(inference: Any, catalog: Any) -> DataCatalog:
    """The inference pipeline's inputs, with trained_model pinned to the version this
    run saved (the versioned dataset's folder holds every version)."""
    from cifar10_kedro.datasets import KerasModelDataset  # noqa: PLC0415

    pinned = DataCatalog()
    for name in inference.inputs():
        dataset = catalog.get(name)
        if dataset is None:
            continue
        if name == MODEL:
            version = dataset.resolve_save_version()
            path = dataset._get_versioned_path(version)  # noqa: SLF001
            dataset = KerasModelDataset(filepath=str(path))
        pinned[name] = dataset
    return pinned
