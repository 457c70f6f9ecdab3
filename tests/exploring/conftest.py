"""What `kedro viz` and `kedro jupyter` show, on the artifacts of one smoke run.

The browser is Debian's Chromium driven through its chromedriver (`.ci/run` installs
both); the tests that need it are skipped where it is missing, except where
``CIFAR10_KEDRO_REQUIRE_BROWSER`` is set (CI), where they fail instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.conftest import PROJECT_ROOT
from tests.pipelines.test_pipelines import make_project_copy, run_session
from tests.processes import (
    environment,
    free_port,
    kedro_args,
    start,
    stop,
    wait_for_url,
)

# Screenshots and executed notebooks, for a person to look at (gitignored).
TEST_OUTPUT = PROJECT_ROOT / "test-output"

# Arguments that keep headless Chromium from reaching for the network or a GPU, which
# makes it hang on a machine without either.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1800,1300",
)


def subprocess_env(project: Path, **extra: str) -> dict[str, str]:
    """The environment for a `kedro` command run in ``project``."""
    # Nothing here reads the raw data; its catalog entry only has to resolve.
    raw = os.environ.get("CIFAR10_RAW_PATH", str(project / "no-raw-data"))
    return environment(CIFAR10_RAW_PATH=raw, **extra)


@contextlib.contextmanager
def kedro_viz_server(project: Path, env: str, log: Path) -> Iterator[str]:
    """Run `kedro viz run --no-browser` on a free loopback port; yield its URL."""
    # kedro-viz refuses ports above the registered range (49151).
    port = free_port(highest=49151)
    command = kedro_args(
        "viz", "run", "--no-browser", "--host", "127.0.0.1", "--port", str(port)
    )
    process = start(
        [*command, "--env", env], cwd=project, env=subprocess_env(project), log=log
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_url(f"{url}/api/main", process, log, timeout=180)
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="session")
def smoke_project(tmp_path_factory, cifar10_subset) -> Path:
    """A copy of the project, with its notebooks, after one `kedro run --env smoke`."""
    project = make_project_copy(tmp_path_factory.mktemp("explore"))
    shutil.copytree(PROJECT_ROOT / "notebooks", project / "notebooks")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.setenv("CIFAR10_RAW_PATH", str(cifar10_subset))
        run_session(project, "smoke")
    return project


@pytest.fixture(scope="session")
def chromium_paths() -> tuple[str, str]:
    """(browser, driver): Debian's chromium and chromium-driver."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    message = (
        "needs chromium and chromium-driver (apt-get install chromium chromium-driver)"
    )
    if os.environ.get("CIFAR10_KEDRO_REQUIRE_BROWSER"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def browser(chromium_paths, tmp_path):
    """A headless Chromium with a fresh profile, driven by Selenium."""
    binary, driver_path = chromium_paths
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (*CHROMIUM_ARGS, f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(argument)
    # A driver path given here keeps Selenium Manager from looking for one online.
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
