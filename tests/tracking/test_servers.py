"""The recorded run seen through MLflow's own servers: `mlflow models serve` answers
with the registered pipeline model, and the MLflow UI shows the run in a browser."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.exploring.conftest import TEST_OUTPUT
from tests.pipelines.test_pipelines import latest
from tests.processes import environment, free_port, start, stop, wait_for_url
from tests.tracking.conftest import EXPERIMENT
from tests.tracking.test_tracking import _png_base64

pytestmark = pytest.mark.slow

SCREENSHOTS = TEST_OUTPUT / "mlflow-ui"


def shows_value(text: str, value: float) -> bool:
    """Whether ``text`` holds ``value`` as a page may write it: in its shortest form
    (0.1, 0.145) or rounded to three or more decimals (0.104 for 0.10416...)."""
    for token in re.findall(r"\d+\.\d+", text):
        decimals = len(token.partition(".")[2])
        if float(token) == value or (
            decimals >= 3 and abs(float(token) - value) <= 0.5 * 10**-decimals + 1e-12
        ):
            return True
    return False


@contextlib.contextmanager
def mlflow_server(args: list[str], tracked: dict, log: Path, health: str) -> Iterator:
    """Run `mlflow ARGS --host 127.0.0.1 --port <free>`; yield its URL."""
    port = free_port()
    # The virtual environment's programs first, as once it is activated: `mlflow
    # models serve` runs `uvicorn` from the PATH.
    bin_dir = str(Path(sys.executable).parent)
    env = environment(
        MLFLOW_TRACKING_URI=tracked["uri"],
        PATH=os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
    )
    mlflow = Path(bin_dir) / "mlflow"
    process = start(
        [str(mlflow), *args, "--host", "127.0.0.1", "--port", str(port)],
        cwd=tracked["project"],
        env=env,
        log=log,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_url(url + health, process, log, timeout=240)
        yield url
    finally:
        stop(process)


def test_mlflow_models_serve_answers_with_the_registered_model(tracked, tmp_path):
    """`mlflow models serve --env-manager local` (no environment to build, nothing
    downloaded) on a loopback port: the registered pipeline model answers."""
    x_test = pd.read_pickle(tracked["data"] / "05_model_input/x_test.pkl")
    expected = pd.read_csv(
        latest(tracked["data"], "07_model_output/test_predictions.csv")
    )
    args = [
        "models",
        "serve",
        "-m",
        f"models:/{EXPERIMENT}/1",
        "--env-manager",
        "local",
    ]
    with mlflow_server(args, tracked, tmp_path / "serve.log", "/ping") as url:
        body = {
            "dataframe_split": {
                "columns": ["file", "image"],
                "data": [[f"{i}.png", _png_base64(x_test[i])] for i in range(4)],
            }
        }
        request = urllib.request.Request(
            url + "/invocations",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = pd.DataFrame(json.loads(response.read())["predictions"])
    assert answer["file"].tolist() == [f"{i}.png" for i in range(4)]
    assert (
        answer["predicted_class"].tolist() == expected["predicted_class"][:4].tolist()
    )
    np.testing.assert_allclose(
        answer["confidence"], expected["confidence"][:4], rtol=1e-5
    )


def test_the_mlflow_ui_shows_the_run_and_its_metrics(tracked, browser, tmp_path):
    """`mlflow ui` on the store, in headless Chromium: the run's page lists its
    metrics; screenshots in test-output/mlflow-ui/."""
    run = tracked["run"]
    experiment = tracked["experiment"].experiment_id
    # One worker: four (the default) take minutes to start on two busy cores.
    args = ["ui", "--backend-store-uri", tracked["uri"], "--workers", "1"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with mlflow_server(args, tracked, tmp_path / "ui.log", "/health") as url:
        browser.get(f"{url}/#/experiments/{experiment}/runs/{run.info.run_id}")
        wait = WebDriverWait(browser, 90)
        wait.until(
            lambda b: "test_accuracy" in b.find_element(By.TAG_NAME, "body").text
        )
        text = browser.find_element(By.TAG_NAME, "body").text
        browser.save_screenshot(str(SCREENSHOTS / "run.png"))
        for name in ("val_accuracy", "test_tta_accuracy", "learning_rate"):
            assert name in text, name
        assert run.info.run_name in text
        accuracy = run.data.metrics["test_accuracy"]
        assert shows_value(text, accuracy), (accuracy, text)
        browser.get(f"{url}/#/experiments/{experiment}/runs")  # Training runs
        wait.until(
            lambda b: run.info.run_name in b.find_element(By.TAG_NAME, "body").text
        )
        browser.save_screenshot(str(SCREENSHOTS / "experiment.png"))
    assert (SCREENSHOTS / "run.png").stat().st_size > 10_000


def test_a_value_is_found_in_the_form_a_page_writes_it():
    assert shows_value("test_accuracy 0.1", 0.1)  # MLflow's UI for 0.1 (not 0.10)
    assert shows_value("test_accuracy 0.145 ...", 0.145)
    assert shows_value("0.104", 0.10416666666666667)
    assert shows_value("0.10416666666666667", 0.10416666666666667)
    assert not shows_value("0.1 0.15 0.146", 0.145)  # another value, or too coarse
