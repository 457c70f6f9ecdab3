"""``kedro compare-runs``: the recorded training runs side by side, from the tracking store."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd
from kedro.framework.cli.utils import CONTEXT_SETTINGS, env_option

from .hook import PARENT_TAG

SCORES = ("test_accuracy", "test_tta_accuracy", "validation_accuracy")
# What the rows show: MLflow's columns (search_runs' table) under their names here.
ROWS = {
    "start_time": "started",
    "time": "time",
    "status": "status",
    "tags.environment": "environment",
    "tags.device": "device",
    "tags.trained_model_version": "model version",
    "epochs": "epochs",
}


def runs_table(
    experiment_names: list[str], max_runs: int = 10, all_params: bool = False
) -> pd.DataFrame:
    """Return the newest ``max_runs`` training runs of the experiments in MLflow's
    tracking store, one column per run; the rows: when and where, how long, the model
    version, the scores (the run's, else its newest reporting child run's), then the
    parameters that differ between them (all of them with ``all_params``)."""
    import mlflow  # noqa: PLC0415

    runs = mlflow.search_runs(
        experiment_names=experiment_names, order_by=["attributes.start_time DESC"]
    )
    if runs.empty:
        return pd.DataFrame()
    parent = f"tags.{PARENT_TAG}"
    extra = [parent, *ROWS, "tags.mlflow.runName", *(f"metrics.{n}" for n in SCORES)]
    runs = runs.reindex(columns=[*runs.columns, *(c for c in extra if c not in runs)])
    children = runs[runs[parent].notna()].drop_duplicates(parent).set_index(parent)
    runs = runs[runs[parent].isna()].head(max_runs).set_index("run_id")
    scores = [f"metrics.{n}" for n in SCORES]
    # A training's scores, else its newest reporting run's.
    runs[scores] = runs[scores].fillna(children[scores])
    runs["time"] = (runs["end_time"] - runs["start_time"]).map(_duration)
    runs["start_time"] = runs["start_time"].dt.strftime("%Y-%m-%d %H:%M:%S UTC")
    client = mlflow.MlflowClient()
    runs["epochs"] = [
        len(client.get_metric_history(run, "val_accuracy")) or "" for run in runs.index
    ]
    shown = runs[scores].map(_score).rename(columns=dict(zip(scores, SCORES)))
    params = runs.filter(regex=r"^params\.").rename(columns=lambda c: f"param {c[7:]}")
    if not all_params:
        # A parameter differs when the runs that read it disagree: a run that did not
        # read it (it trained from the arrays of an earlier run) shows a blank.
        params = params.loc[:, params.nunique(dropna=True) > 1]
    table = pd.concat([runs[list(ROWS)].rename(columns=ROWS), shown, params], axis=1)
    table.index = [
        f"{n or ''} {i[:8]}".strip()
        for n, i in zip(runs["tags.mlflow.runName"], runs.index)
    ]
    return table.T.fillna("")


def _duration(elapsed: pd.Timedelta) -> str:
    if pd.isna(elapsed):
        return ""
    minutes, seconds = divmod(round(elapsed.total_seconds()), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def _score(value: float) -> str:
    return "" if pd.isna(value) else f"{value:.4f}"


@click.command("compare-runs", context_settings=CONTEXT_SETTINGS)
@env_option(
    envvar="KEDRO_ENV", help="Environment whose experiment (mlflow.yml) is shown."
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

    project = find_kedro_project(Path.cwd()) or Path.cwd()
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        # kedro-mlflow's hook sets MLflow's tracking URI (TrackingHook).
        config = session.load_context().mlflow
    uri = config.server.mlflow_tracking_uri
    names = list(experiments) or [config.tracking.experiment.name]
    table = runs_table(names, max_runs, all_params)
    if table.empty:
        click.echo(f"No runs recorded in experiment(s) {', '.join(names)} at {uri}.")
        return
    click.echo(f"Runs of experiment(s) {', '.join(names)} at {uri}:\n")
    with pd.option_context("display.max_colwidth", 40, "display.width", 250):
        click.echo(table.to_string())
