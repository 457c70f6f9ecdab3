"""A project copy whose smoke runs are recorded in a SQLite tracking store of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.pipelines.test_pipelines import make_project_copy, run_session
from tests.processes import Completed, environment, kedro, run

EXPERIMENT = "cifar10-kedro-smoke"  # conf/smoke/mlflow.yml


def store_uri(project: Path) -> str:
    """The tracking store of the tests: a SQLite file in the project copy."""
    return f"sqlite:///{project / 'tracking' / 'mlflow.db'}"


def git_checkout(project: Path) -> str:
    """Make ``project`` a git checkout with one commit; return the commit."""

    def git(*args: str) -> str:
        done = run(
            ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
            cwd=project,
            timeout=None,
        )
        done.check_returncode()
        return done.stdout.strip()

    (project / ".gitignore").write_text("data/\ntracking/\nmlartifacts/\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "a project under test")
    return git("rev-parse", "HEAD")


def kedro_run(project: Path, *args: str, **env: str) -> Completed:
    """`kedro run --env smoke ARGS` in ``project``, as a user types it."""
    return kedro(
        project, "run", "--env", "smoke", *args, env=environment(**env), timeout=400
    )


@pytest.fixture(scope="session")
def tracked(tmp_path_factory, cifar10_subset) -> dict:
    """One `kedro run --env smoke` recorded in the project copy's store."""
    project = make_project_copy(tmp_path_factory.mktemp("tracked"))
    commit = git_checkout(project)
    uri = store_uri(project)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.setenv("CIFAR10_RAW_PATH", str(cifar10_subset))
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.delenv("CIFAR10_KEDRO_TRACKING", raising=False)
        run_session(project, "smoke")
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    (run,) = client.search_runs([experiment.experiment_id])
    return {
        "project": project,
        "data": project / "data" / "smoke",
        "uri": uri,
        "client": client,
        "experiment": experiment,
        "run": run,
        "commit": commit,
        "raw": cifar10_subset,
    }


# The headless Chromium of the kedro viz tests.
from tests.exploring.conftest import browser, chromium_paths  # noqa: E402, F401
