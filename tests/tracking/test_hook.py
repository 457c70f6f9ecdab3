"""The tracking hook's pieces, without a Kedro run: the switch, the local store, a
server that does not answer, the commit, and what the catalog declares under
``metadata: mlflow:``."""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import MemoryDataset

from cifar10_kedro.tracking.hook import (
    DECLARATIONS,
    declared,
    git_commit,
    local_store,
    tracking_enabled,
)
from tests.conftest import PROJECT_ROOT
from tests.pipelines.test_pipelines import make_project_copy


@pytest.mark.parametrize(
    ("value", "enabled"),
    [("false", False), ("0", False), (" Off ", False), ("no", False), ("true", True)],
)
def test_the_switch_reads_the_environment(value, enabled):
    assert tracking_enabled({"CIFAR10_KEDRO_TRACKING": value}) is enabled
    assert tracking_enabled({}) is True


def test_a_relative_sqlite_store_is_in_the_project_folder(tmp_path):
    conf = local_store(
        {"server": {"mlflow_tracking_uri": "sqlite:///db/x.db"}}, tmp_path
    )
    assert conf["server"]["mlflow_tracking_uri"] == f"sqlite:///{tmp_path}/db/x.db"
    kwargs = conf["tracking"]["experiment"]["create_experiment_kwargs"]
    assert kwargs["artifact_location"] == str(tmp_path / "mlartifacts")


def test_other_stores_are_left_as_they_are(tmp_path):
    for uri in ("sqlite:////abs/x.db", "http://host:5000", "databricks"):
        conf = local_store({"server": {"mlflow_tracking_uri": uri}}, tmp_path)
        assert conf["server"]["mlflow_tracking_uri"] == uri
    remote = local_store({"server": {"mlflow_tracking_uri": "http://h:1"}}, tmp_path)
    assert "tracking" not in remote  # the server chooses where artifacts go


def test_without_a_uri_the_environment_or_the_default_is_used(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    conf = local_store({"server": {"mlflow_tracking_uri": None}}, tmp_path)
    assert conf["server"]["mlflow_tracking_uri"] == f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    conf = local_store({}, tmp_path)
    assert conf["server"]["mlflow_tracking_uri"] == "http://tracking:5000"


def test_a_server_that_never_answers_costs_seconds_not_minutes(
    tmp_path, monkeypatch, caplog
):
    """A tracking server that accepts the connection and says nothing: the session
    warns and goes on without tracking after MLflow's first request times out (5 s,
    no retries), not after the minutes of MLflow's default retries."""
    project = make_project_copy(tmp_path / "project")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setenv(
            "MLFLOW_TRACKING_URI", f"http://127.0.0.1:{silent.getsockname()[1]}"
        )
        monkeypatch.chdir(project)
        bootstrap_project(project)
        start = time.monotonic()
        with (
            caplog.at_level(logging.WARNING, "cifar10_kedro.tracking"),
            KedroSession.create(project_path=project, env="smoke") as session,
        ):
            session.load_context()
        elapsed = time.monotonic() - start
    assert "cannot be reached" in caplog.text
    assert elapsed < 60, elapsed  # noqa: PLR2004 - MLflow's default: over 10 min


def test_the_commit_is_the_full_hash_dirty_with_changes_to_tracked_files(tmp_path):
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(tmp_path), *args],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    assert git_commit(tmp_path) == "unknown"  # not a checkout
    git("init", "-q")
    (tmp_path / "a.txt").write_text("a")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a")
    git("tag", "v1")  # a tag's name is never the commit
    head = git("rev-parse", "HEAD")
    (tmp_path / "untracked.txt").write_text("b")
    assert git_commit(tmp_path) == head
    (tmp_path / "a.txt").write_text("changed")
    assert git_commit(tmp_path) == f"{head}-dirty"


def test_an_unknown_declaration_is_an_error_naming_it():
    dataset = MemoryDataset(metadata={"mlflow": {"artefact": "plots/x.png"}})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['artefact'\]"):
        declared(dataset)
    assert declared(MemoryDataset()) == {}
    assert declared(None) == {}


def _catalog_declarations() -> dict[str, dict]:
    import yaml  # noqa: PLC0415

    found = {}
    for path in sorted((PROJECT_ROOT / "conf" / "base").glob("catalog*/**/*.yml")):
        for name, entry in (yaml.safe_load(path.read_text()) or {}).items():
            if isinstance(entry, dict) and "mlflow" in (entry.get("metadata") or {}):
                found[name] = entry["metadata"]["mlflow"]
    return found


def test_the_catalog_declares_only_known_keys_and_logs_every_report():
    found = _catalog_declarations()
    for name, wanted in found.items():
        assert set(wanted) <= DECLARATIONS, name
    artifacts = {name for name, wanted in found.items() if "artifact" in wanted}
    reports = {
        "dataset_summary",
        "sample_grid",
        "{metrics}_metrics",
        "classification_report",
        "{name}_curve",
        "{name}_plot",
        "comparison",
        "training_history",
    }
    assert reports <= artifacts
    # A namespaced variant of each, under the variant's own folder.
    for name in reports - {"dataset_summary", "sample_grid", "comparison"}:
        assert found[f"{{variant}}.{name}"]["artifact"].startswith("{variant}/")
    assert Path(found["training_history"]["artifact"]).suffix == ".csv"
