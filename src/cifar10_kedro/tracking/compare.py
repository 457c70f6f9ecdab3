"""``kedro compare-runs``: the recorded runs side by side, from the tracking store.

One column per training run (newest first): when and where it ran, how long it took,
its model version, its test accuracy plain and with test-time augmentation (from the
run, or from the newest reporting run recorded under it), and every parameter whose
value differs between the runs shown that read it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pandas as pd
from kedro.framework.cli.utils import CONTEXT_SETTINGS

from .hook import MODEL_VERSION_TAG, PARENT_TAG

SCORES = ("test_accuracy", "test_tta_accuracy", "validation_accuracy")


def _when(milliseconds: int | None) -> str:
    if not milliseconds:
        return ""
    moment = datetime.fromtimestamp(milliseconds / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(run: Any) -> str:
    if not run.info.end_time or not run.info.start_time:
        return ""
    seconds = round((run.info.end_time - run.info.start_time) / 1000)
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def runs_table(
    client: Any,
    experiment_names: list[str],
    max_runs: int = 10,
    all_params: bool = False,
) -> pd.DataFrame:
    """Return the newest ``max_runs`` training runs of the experiments as a table,
    one column per run; the rows: what and where, the scores, then the parameters
    that differ between them (all of them with ``all_params``)."""
    experiments = [client.get_experiment_by_name(name) for name in experiment_names]
    ids = [e.experiment_id for e in experiments if e is not None]
    if not ids:
        return pd.DataFrame()
    runs = client.search_runs(
        ids, order_by=["attributes.start_time DESC"], max_results=5000
    )
    trainings = [r for r in runs if PARENT_TAG not in r.data.tags][:max_runs]
    newest_child: dict[str, Any] = {}
    for run in runs:  # newest first: keep the first child of each parent
        parent = run.data.tags.get(PARENT_TAG)
        if parent and parent not in newest_child:
            newest_child[parent] = run
    columns: dict[str, dict[str, Any]] = {}
    for run in trainings:
        tags, metrics = run.data.tags, dict(run.data.metrics)
        child = newest_child.get(run.info.run_id)
        for name in SCORES:
            if child is not None and name in child.data.metrics:
                metrics.setdefault(name, child.data.metrics[name])
        name = f"{run.info.run_name or ''} {run.info.run_id[:8]}".strip()
        columns[name] = {
            "started": _when(run.info.start_time),
            "time": _duration(run),
            "status": run.info.status,
            "environment": tags.get("environment", ""),
            "device": tags.get("device", ""),
            "model version": tags.get(MODEL_VERSION_TAG, ""),
            "epochs": _epochs(client, run),
            **{name: _score(metrics.get(name)) for name in SCORES},
            **{f"param {k}": v for k, v in run.data.params.items()},
        }
    table = pd.DataFrame(columns)
    params = [i for i in table.index if i.startswith("param ")]
    if not all_params:
        # A parameter differs when the runs that read it disagree: a run that did not
        # read it (one that trained from the arrays of an earlier run) shows a blank.
        same = [i for i in params if table.loc[i].dropna().astype(str).nunique() <= 1]
        table = table.drop(index=same)
    return table.fillna("")


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _epochs(client: Any, run: Any) -> str:
    if "val_accuracy" not in run.data.metrics:
        return ""
    return str(len(client.get_metric_history(run.info.run_id, "val_accuracy")))


@click.command("compare-runs", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--env",
    "-e",
    envvar="KEDRO_ENV",
    default=None,
    help="Configuration environment whose experiment (mlflow.yml) is shown.",
)
@click.option(
    "--experiment",
    "experiments",
    multiple=True,
    help="Experiment(s) to show instead of the environment's (repeat for several).",
)
@click.option("--max-runs", "-n", default=10, show_default=True, type=int)
@click.option(
    "--all-params", is_flag=True, help="Every parameter, not only those that differ."
)
def compare_runs(
    env: str | None, experiments: tuple[str, ...], max_runs: int, all_params: bool
) -> None:
    """Print the recorded training runs side by side (newest first)."""
    from kedro.framework.session import KedroSession  # noqa: PLC0415
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415
    from kedro.utils import find_kedro_project  # noqa: PLC0415
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    project = find_kedro_project(Path.cwd()) or Path.cwd()
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        config = session.load_context().mlflow
    uri = config.server.mlflow_tracking_uri
    names = list(experiments) or [config.tracking.experiment.name]
    client = MlflowClient(tracking_uri=uri)
    table = runs_table(client, names, max_runs=max_runs, all_params=all_params)
    if table.empty:
        click.echo(f"No runs recorded in experiment(s) {', '.join(names)} at {uri}.")
        return
    click.echo(f"Runs of experiment(s) {', '.join(names)} at {uri}:\n")
    with pd.option_context("display.max_colwidth", 40, "display.width", 250):
        click.echo(table.to_string())
