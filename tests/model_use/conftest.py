"""A trained project to use: one smoke run (its weak but real model) with every test
image, in a temporary copy of the project, shared by the inference, export and
service tests."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tests.pipelines.test_pipelines import make_project_copy, snapshot

ENV = "smoke"
EXPORTS = "06_models/exports"


# The whole test set (10,000 images) for the equality checks; no test-time
# augmentation, which only reporting's TTA metric uses and costs 10 passes.
FULL_TEST_SET = {
    "data_ingestion": {"test_per_class": None},
    "reporting": {"tta": {"flip": False, "translate": 0}},
}


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory, cifar10_subset) -> Path:
    """A project copy after `kedro run --env smoke` on the full test set."""
    project = make_project_copy(tmp_path_factory.mktemp("use"))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.setenv("CIFAR10_RAW_PATH", str(cifar10_subset))
        run_project(project, runtime_params=FULL_TEST_SET)
    return project


@pytest.fixture(scope="session")
def exported(trained_project) -> Path:
    """The trained project's data folder after `kedro run --pipeline export`."""
    root = trained_project / "data" / ENV
    before = snapshot(root)
    run_project(trained_project, pipeline_names=["export"])
    after = snapshot(root)
    # Only new files, all under the exports folder; nothing earlier touched.
    assert {k: after[k] for k in before} == before
    assert all(k.startswith(EXPORTS) for k in after.keys() - before.keys())
    return root


def run_project(
    project: Path, runtime_params: dict | None = None, env: str = ENV, **run_args
) -> dict:
    """`kedro run` in ``project`` through a KedroSession; return what it returns."""
    bootstrap_project(project)
    with KedroSession.create(
        project_path=project, env=env, runtime_params=runtime_params
    ) as session:
        return session.run(**run_args)


@pytest.fixture(scope="session")
def test_image_folder(tmp_path_factory, cifar10_subset) -> Path:
    """The 10,000 CIFAR-10 test images as JPEG files: test/<class>/NNNN.jpg."""
    root = tmp_path_factory.mktemp("test_images")
    with tarfile.open(cifar10_subset) as archive:
        members = [
            m
            for m in archive.getmembers()
            if m.isfile() and m.name.split("/")[-3:][0] == "test"
        ]
        archive.extractall(root, members=members, filter="data")
    found = [p for p in root.rglob("test") if p.is_dir()]
    assert len(found) == 1, found
    return found[0]
