"""What `kedro viz` and `kedro jupyter` show, on the artifacts of one smoke run.

The browser is Debian's Chromium driven through its chromedriver (`.ci/run` installs
both); the tests that need it are skipped where it is missing, except where
``CIFAR10_KEDRO_REQUIRE_BROWSER`` is set (CI), where they fail instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.conftest import PROJECT_ROOT
from tests.pipelines.test_pipelines import make_project_copy, run_session

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


def free_port(highest: int = 65535) -> int:
    """A TCP port on the loopback interface, at most ``highest``, that is free now."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port <= highest:
            return port
    pytest.fail(f"no free port at most {highest}")


def subprocess_env(project: Path, **extra: str) -> dict[str, str]:
    """The environment for a `kedro` command run in ``project``."""
    env = {k: v for k, v in os.environ.items() if k != "KEDRO_ENV"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", DO_NOT_TRACK="1", KEDRO_DISABLE_TELEMETRY="1")
    # Nothing here reads the raw data; its catalog entry only has to resolve.
    env.setdefault("CIFAR10_RAW_PATH", str(project / "no-raw-data"))
    env.update(extra)
    return env


def kedro_command(*args: str) -> list[str]:
    """`kedro ...` with this interpreter, whatever is on PATH."""
    return [sys.executable, "-m", "kedro", *args]


def wait_for_url(
    url: str, process: subprocess.Popen, log: Path, timeout: float
) -> None:
    """Wait until ``url`` answers 200, failing early if ``process`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            )
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop ``process`` and everything it started (its own process group)."""
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)


@contextlib.contextmanager
def kedro_viz_server(project: Path, env: str, log: Path) -> Iterator[str]:
    """Run `kedro viz run --no-browser` on a free loopback port; yield its URL."""
    # kedro-viz refuses ports above the registered range (49151).
    port = free_port(highest=49151)
    command = kedro_command(
        "viz", "run", "--no-browser", "--host", "127.0.0.1", "--port", str(port)
    )
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [*command, "--env", env],
            cwd=project,
            env=subprocess_env(project),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, to stop it whole
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_url(f"{url}/api/main", process, log, timeout=180)
        yield url
    finally:
        stop_process_group(process)


@pytest.fixture(scope="session")
def smoke_project(tmp_path_factory, shared_jpeg_archive) -> Path:
    """A copy of the project, with its notebooks, after one `kedro run --env smoke`."""
    project = make_project_copy(tmp_path_factory.mktemp("explore"))
    shutil.copytree(PROJECT_ROOT / "notebooks", project / "notebooks")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.setenv("CIFAR10_RAW_PATH", str(shared_jpeg_archive))
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
