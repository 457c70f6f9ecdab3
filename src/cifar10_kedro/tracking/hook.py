"""Every ``kedro run`` recorded in MLflow: kedro-mlflow's hook, and what the catalog declares.

``TrackingHook`` drives kedro-mlflow's own ``MlflowHook`` through its hook methods (one
MLflow run per ``kedro run``, the parameters the nodes read, ``conf/<env>/mlflow.yml``)
and logs, with MLflow's client, what catalog entries declare under ``metadata: mlflow:``
(``DECLARATIONS``; docs/tracking.md says what each key does), the run's tags, and the
inference request pipeline as the MLflow model of a run that trained one.

Tracking never costs a result: a store that cannot be reached gives one warning and a
run that records nothing, and a store's error later (``STORE_ERRORS``) is a warning.
Any other error is a bug, and raised.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import mlflow
from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl
from kedro.io import DatasetError
from kedro_mlflow.framework.hooks import MlflowHook
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from pydantic import BaseModel

import cifar10_kedro
from cifar10_kedro.hardware import describe_device

from .model import log_model

logger = logging.getLogger(__name__)

# What a tracking store raises when it cannot record: MLflow's errors, and the
# filesystem's or the network's (requests' errors are OSErrors).
STORE_ERRORS = (MlflowException, OSError)
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: the UI nests the run under it
# The local store's artifacts, beside it in the project folder.
LOCAL_ARTIFACTS = "mlartifacts"
# MLflow's request settings for the first contact with the store: a server that does
# not answer costs seconds, not the minutes of MLflow's default retries.
FIRST_CONTACT = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}


def tracking_enabled(environ: dict[str, str] | None = None) -> bool:
    """False when ``CIFAR10_KEDRO_TRACKING`` is 0, false, no or off."""
    value = (os.environ if environ is None else environ).get(
        "CIFAR10_KEDRO_TRACKING", ""
    )
    return value.strip().lower() not in {"0", "false", "no", "off"}


def local_store(conf: dict[str, Any], project_path: Path) -> dict[str, Any]:
    """Return mlflow.yml's ``conf`` with its store's URI (mlflow.yml's, else
    ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``); a relative ``sqlite:///``
    path is made absolute from the project folder (MLflow would take it from the
    current directory: ``notebooks/`` under ``kedro jupyter``), and such a local
    store's new experiments keep their artifacts in ``mlartifacts/`` beside it."""
    conf = copy.deepcopy(conf)
    server = conf["server"] = conf.get("server") or {}
    default = os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    uri = server["mlflow_tracking_uri"] = server.get("mlflow_tracking_uri") or default
    if not uri.startswith("sqlite:///"):  # the store decides where artifacts go
        return conf
    path = uri.removeprefix("sqlite:///")
    if path and not path.startswith("/") and path != ":memory:":
        server["mlflow_tracking_uri"] = f"sqlite:///{project_path / path}"
    experiment = conf.setdefault("tracking", {}).setdefault("experiment", {})
    kwargs = experiment.setdefault("create_experiment_kwargs", {})
    kwargs["artifact_location"] = kwargs.get("artifact_location") or str(
        project_path / LOCAL_ARTIFACTS
    )
    return conf


def git_commit(project_path: Path) -> str:
    """The commit checked out in the project folder (``-dirty`` with uncommitted
    changes to tracked files), or "unknown" outside a git checkout."""
    # The full hash, never a tag's name (--exclude), and --dirty's suffix.
    describe = ["git", "describe", "--always", "--dirty", "--abbrev=40", "--exclude=*"]
    try:
        return subprocess.check_output(
            describe, cwd=project_path, stderr=subprocess.DEVNULL, text=True, timeout=10
        ).strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


DECLARATIONS = {
    "artifact",
    "metrics",
    "callbacks",
    "epochs",
    "tags",
    "params",
    "version_tag",
}


def declared(dataset: Any) -> dict[str, Any]:
    """What the catalog entry of ``dataset`` declares under ``metadata: mlflow:``.

    Raises ``ValueError`` for a key this hook does not know (a typo would otherwise
    record nothing, silently).
    """
    found = (getattr(dataset, "metadata", None) or {}).get("mlflow") or {}
    if unknown := set(found) - DECLARATIONS:
        raise ValueError(
            f"{dataset}: metadata 'mlflow' has the unknown key(s) {sorted(unknown)}; "
            f"expected some of {sorted(DECLARATIONS)} (cifar10_kedro.tracking)."
        )
    return found


def _value(data: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        data = data[part]
    return data


class TrackingHook:
    """Records every ``kedro run`` in MLflow (the module docstring)."""

    def __init__(self) -> None:
        self._mlflow: MlflowHook | None = None  # once the store answered
        self._run_id: str | None = None  # the run this session records into
        self._catalog: Any = None
        self._saved: dict[str, str] = {}  # version_tag's dataset -> version saved
        self._training_tags: dict[str | None, dict[str, str]] = {}
        self._warned: set[str] = set()

    @contextlib.contextmanager
    def _best_effort(self, what: str) -> Iterator[None]:
        """Turn a store's error into one warning for ``what``."""
        try:
            yield
        except STORE_ERRORS as exc:
            if what not in self._warned:
                self._warned.add(what)
                logger.warning(
                    "MLflow tracking: could not %s (%s: %s); the run goes on and its "
                    "outputs are saved as usual.",
                    what,
                    type(exc).__name__,
                    exc,
                )

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._mlflow = None
        if not tracking_enabled():
            logger.info(
                "Experiment tracking is off (CIFAR10_KEDRO_TRACKING): this run is not "
                "recorded in MLflow."
            )
            return
        try:
            conf = dict(context.config_loader["mlflow"])
        except MissingConfigException:
            conf = {}
        self._project = Path(context.project_path)
        self._env = context.env or "local"
        conf = local_store(conf, self._project)
        # kedro-mlflow reads its configuration from the loader (Kedro lets a key be
        # set on it directly).
        context.config_loader["mlflow"] = conf
        uri = conf["server"]["mlflow_tracking_uri"]
        hook = MlflowHook()
        try:
            with mock.patch.dict(os.environ, FIRST_CONTACT):
                hook.after_context_created(context)
        except STORE_ERRORS as exc:
            logger.warning(
                "MLflow tracking store %s cannot be reached (%s: %s): this run is not "
                "recorded; its outputs are saved as usual. Set MLFLOW_TRACKING_URI (or "
                "mlflow.yml's server), or CIFAR10_KEDRO_TRACKING=false.",
                uri,
                type(exc).__name__,
                exc,
            )
            return
        self._mlflow = hook
        self._experiment = context.mlflow.tracking.experiment.name
        self._client = mlflow.MlflowClient()

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        # One hook serves every session of a process: nothing of an earlier run.
        self._run_id, self._catalog = None, catalog
        self._saved, self._training_tags = {}, {}
        if self._mlflow is None:
            return
        with self._best_effort("start the MLflow run"):
            self._mlflow.before_pipeline_run(run_params, pipeline, catalog)
            run = mlflow.active_run()
            if run is None:  # a pipeline that mlflow.yml does not record
                return
            self._run_id, self._experiment_id = run.info.run_id, run.info.experiment_id
            commit = git_commit(self._project)
            tags = {
                "environment": self._env,
                "package_version": cifar10_kedro.__version__,
                "git_commit": commit,
                "mlflow.source.git.commit": commit.removesuffix("-dirty"),
                "device": describe_device(),
                **self._evaluated(pipeline, catalog),
            }
            self._tag(tags)

    def _tag(self, tags: dict[str, Any]) -> None:
        self._client.log_batch(
            self._run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()]
        )

    def _evaluated(self, pipeline: Any, catalog: Any) -> dict[str, str]:
        """The tags of a run that loads a version it does not save (a model it
        evaluates): that version, and the run that saved it as the parent."""
        for name in sorted(pipeline.inputs()):
            tag = declared(catalog.get(name)).get("version_tag")
            if tag is None:
                continue
            try:
                version = catalog.get(name).resolve_load_version()
            except DatasetError:  # none saved: the run itself says so
                return {}
            found = self._client.search_runs(
                [self._experiment_id],
                filter_string=f"tags.`{tag}` = '{version}'",
                order_by=["attributes.start_time ASC"],
            )
            parents = [r.info.run_id for r in found if PARENT_TAG not in r.data.tags]
            parent = parents[0] if parents else "none recorded"
            logger.info(
                "MLflow: this run loads %s %s, saved by run %s.", name, version, parent
            )
            return {tag: version, **({PARENT_TAG: parents[0]} if parents else {})}
        return {}

    @hook_impl
    def before_node_run(
        self, node: Any, catalog: Any, inputs: dict[str, Any], is_async: bool
    ) -> dict[str, Any] | None:
        if self._run_id is None:
            return None
        # Typed (pydantic) groups as the dicts kedro-mlflow logs key by key.
        params = {
            k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v
            for k, v in inputs.items()
            if k.startswith("params:")
        }
        with self._best_effort("log the node's parameters"):
            self._mlflow.before_node_run(node, catalog, params, is_async)
        for name, callbacks in inputs.items():
            prefix = declared(catalog.get(name)).get("callbacks")
            if prefix is not None:
                from .callbacks import EpochLogger  # noqa: PLC0415 - imports Keras

                epochs = EpochLogger(lambda rows, p=prefix: self._log_metrics(rows, p))
                return {name: [*callbacks, epochs]}
        return None

    def _log_metrics(self, rows: dict[int, dict[str, float]], prefix: str) -> None:
        """Log ``{step: {name: value}}`` as the run's metrics, ``prefix`` before names."""
        now = int(time.time() * 1000)
        metrics = [
            Metric(f"{prefix}{name}", float(value), now, step)
            for step, row in sorted(rows.items())
            for name, value in row.items()
        ]
        with self._best_effort("log metrics"):
            self._client.log_batch(self._run_id, metrics=metrics, synchronous=True)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        if self._run_id is None:
            return
        dataset = self._catalog.get(dataset_name)
        wanted = declared(dataset)
        with self._best_effort(f"log {dataset_name}"):
            if "artifact" in wanted:
                self._log_artifact(data, wanted["artifact"])
            if "metrics" in wanted:
                self._log_metrics({0: data}, wanted["metrics"])
            if "tags" in wanted:
                tags = {tag: _value(data, key) for key, tag in wanted["tags"].items()}
                self._training_tags[node.namespace] = tags
                self._tag(tags)
            if "params" in wanted:
                params = {name: _value(data, k) for k, name in wanted["params"].items()}
                self._client.log_batch(
                    self._run_id,
                    params=[Param(k, str(v)) for k, v in params.items()],
                )
            if "version_tag" in wanted:
                self._saved[dataset_name] = dataset.resolve_save_version()
                self._tag({wanted["version_tag"]: self._saved[dataset_name]})
            if "epochs" in wanted:
                self._restored_epochs(data, wanted["epochs"], node.namespace)

    def _log_artifact(self, data: Any, path: str) -> None:
        import pandas as pd  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415

        if isinstance(data, Figure):
            self._client.log_figure(self._run_id, data, path)
        elif isinstance(data, pd.DataFrame):
            self._client.log_text(self._run_id, data.to_csv(index=False), path)
        else:
            self._client.log_dict(self._run_id, data, path)

    def _restored_epochs(self, history: Any, prefix: str, namespace: str) -> None:
        """Log the epochs of ``history`` not logged live: those a training resumed from
        its checkpoint restored. The interrupted training's runs (left RUNNING by the
        killed process: same training tags) end as KILLED."""
        from cifar10_kedro.pipelines.model_training.training_state import (  # noqa: PLC0415
            EPOCH_METRICS,
        )

        metric = f"{prefix}{EPOCH_METRICS[0]}"
        live = {m.step for m in self._client.get_metric_history(self._run_id, metric)}
        rows = {
            int(row["epoch"]): {name: row[name] for name in EPOCH_METRICS}
            for row in history.to_dict("records")
            if int(row["epoch"]) not in live
        }
        if not rows:
            return
        self._log_metrics(rows, prefix)
        epoch = min(live, default=max(rows) + 1)  # the first this command trained
        if epoch == 1:  # not resumed: epochs whose live logging failed
            return
        # The interrupted training's runs: the same training's, still RUNNING.
        training = self._training_tags.get(namespace, {})
        same = [f"tags.`{k}` = '{v}'" for k, v in training.items()]
        where = " and ".join([*same, "attributes.status = 'RUNNING'"])
        found = self._client.search_runs([self._experiment_id], where) if same else []
        ended = [r.info.run_id for r in found if r.info.run_id != self._run_id]
        for run_id in ended:
            self._client.set_tag(run_id, "resumed_in", self._run_id)
            self._client.set_terminated(run_id, "KILLED")
        prefix = f"{namespace}." if namespace else ""
        tags = {f"{prefix}resumed_at_epoch": epoch}
        self._tag(tags | ({f"{prefix}resumed_from": ",".join(ended)} if ended else {}))
        logger.info(
            "MLflow: training resumed at epoch %d; the checkpoint's epochs are logged "
            "to this run; the interrupted training's runs ended as KILLED: %s.",
            epoch,
            ", ".join(ended) or "none recorded",
        )

    @hook_impl
    def after_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        if self._mlflow is None:  # kedro-mlflow ends what it started, even half
            return
        if self._run_id and (versions := self._model_versions(catalog)):
            with self._best_effort("log the model"):
                log_model(catalog, versions, self._experiment)
        with self._best_effort("end the MLflow run"):
            self._mlflow.after_pipeline_run(run_params, pipeline, catalog)
        self._run_id = None

    def _model_versions(self, catalog: Any) -> dict[str, str] | None:
        """The versions this run saved of the MLflow model's inputs that declare a
        ``version_tag`` (``inference.create_request_pipeline``'s trained model), or
        None if it saved not all of them."""
        from cifar10_kedro.pipelines.inference.pipeline import (  # noqa: PLC0415
            create_request_pipeline,
        )

        inputs = create_request_pipeline().inputs()
        wanted = {n for n in inputs if "version_tag" in declared(catalog.get(n))}
        if wanted and wanted <= set(self._saved):
            return {name: self._saved[name] for name in wanted}
        return None

    @hook_impl
    def on_pipeline_error(
        self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        if self._mlflow is None:
            return
        with self._best_effort("close the failed MLflow run"):
            self._mlflow.on_pipeline_error(error, run_params, pipeline, catalog)
        self._run_id = None
