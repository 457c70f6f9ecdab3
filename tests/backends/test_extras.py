"""The install extras of the GPU path: ``jax`` (JAX on CPUs: what the JAX tests here run
on) and ``gpu`` (JAX with CUDA), as pyproject.toml declares them."""

from __future__ import annotations

import json
import sys
from importlib.metadata import PackageNotFoundError, version

import pytest
from packaging.requirements import Requirement

from tests.conftest import PROJECT_ROOT
from tests.processes import run

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def extra(name: str) -> list[Requirement]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(line) for line in project["optional-dependencies"][name]]


def test_what_the_jax_extra_asks_for_is_installed():
    """scripts/test.sh installs the jax extra: a JAX test never skips for want of it."""
    for requirement in extra("jax"):
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            pytest.fail(f"{requirement} (the jax extra) is not installed")
        assert requirement.specifier.contains(installed, prereleases=True)


def test_the_gpu_extra_is_jax_with_its_cuda_libraries():
    (jax,) = extra("gpu")
    assert jax.name == "jax"
    assert jax.extras == {"cuda12"}
    assert jax.specifier == extra("jax")[0].specifier


@pytest.mark.slow
def test_the_gpu_extra_resolves_against_the_installed_jax(tmp_path):
    """What `pip install ".[gpu]"` would add to this environment (pip resolves it
    from the package index without installing): JAX's CUDA plugin of the installed
    JAX's version, and the CUDA libraries."""
    report = tmp_path / "report.json"
    completed = run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet"]
        + ["--report", str(report), f"{PROJECT_ROOT}[gpu]"],
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    added = {
        item["metadata"]["name"]: item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert added.get("jax-cuda12-plugin") == version("jax"), sorted(added)
    assert any(name.startswith("nvidia-cudnn") for name in added), sorted(added)
