"""`kedro viz run` and `kedro viz build`: the DAG, its layers and previews, in a browser."""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.exploring.conftest import (
    TEST_OUTPUT,
    free_port,
    kedro_command,
    kedro_viz_server,
    subprocess_env,
)

LAYERS = [
    "raw",
    "intermediate",
    "primary",
    "model_input",
    "models",
    "model_output",
    "reporting",
]
# inference and export run on demand (not in __default__); kedro viz shows them when
# selected.
ON_DEMAND = ["inference", "export"]
PIPELINES = ["data_ingestion", "model_training", "reporting", *ON_DEMAND]
# Reporting outputs and the kedro-datasets preview each gets in the side panel.
PREVIEWS = {
    "sample_grid": "ImagePreview",
    "loss_curve": "ImagePreview",
    "accuracy_curve": "ImagePreview",
    "confusion_matrix_plot": "ImagePreview",
    "confident_mistakes_plot": "ImagePreview",
    "dataset_summary": "JSONPreview",
    "test_metrics": "JSONPreview",
    "classification_report": "TablePreview",
    "training_history": "TablePreview",
    "test_predictions": "TablePreview",
}
SCREENSHOTS = TEST_OUTPUT / "kedro-viz"


@pytest.fixture(scope="module")
def default_pipeline(smoke_project) -> dict[str, set[str]]:
    """The names of the default pipeline's nodes and datasets (parameters aside)."""
    bootstrap_project(smoke_project)
    default = pipelines["__default__"]
    datasets = {
        name
        for name in default.datasets()
        if not name.startswith("params:") and name != "parameters"
    }
    return {"nodes": {node.name for node in default.nodes}, "datasets": datasets}


@pytest.fixture(scope="module")
def viz_url(smoke_project, tmp_path_factory):
    """A `kedro viz run --env smoke` server on the smoke run's artifacts."""
    log = tmp_path_factory.mktemp("kedro-viz") / "server.log"
    with kedro_viz_server(smoke_project, "smoke", log) as url:
        yield url


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.load(response)


def by_name(main: dict) -> dict[str, dict]:
    return {node["name"]: node for node in main["nodes"]}


def assert_every_node_and_dataset_with_its_layer(main: dict, default_pipeline) -> None:
    nodes = by_name(main)
    tasks = {name for name, node in nodes.items() if node["type"] == "task"}
    assert default_pipeline["nodes"] <= tasks
    missing = default_pipeline["datasets"] - nodes.keys()
    assert not missing, f"datasets missing from kedro viz: {sorted(missing)}"
    no_layer = sorted(
        name for name in default_pipeline["datasets"] if not nodes[name].get("layer")
    )
    assert not no_layer, f"datasets without a layer: {no_layer}"
    assert {nodes[name]["layer"] for name in default_pipeline["datasets"]} == set(
        LAYERS
    )
    assert main["layers"] == LAYERS  # in this order, top to bottom


@pytest.mark.slow
def test_api_has_every_node_and_dataset_with_its_layer(viz_url, default_pipeline):
    main = get_json(f"{viz_url}/api/main")
    assert main["selected_pipeline"] == "__default__"
    assert_every_node_and_dataset_with_its_layer(main, default_pipeline)


@pytest.mark.slow
def test_api_lists_each_pipeline_and_tags_each_node_with_it(viz_url, smoke_project):
    main = get_json(f"{viz_url}/api/main")
    assert {p["id"] for p in main["pipelines"]} == {"__default__", *PIPELINES}
    assert {tag["id"] for tag in main["tags"]} == set(PIPELINES)
    bootstrap_project(smoke_project)
    for name in PIPELINES:
        shown = (
            main
            if name not in ON_DEMAND
            else get_json(f"{viz_url}/api/pipelines/{name}")
        )
        nodes = by_name(shown)
        for node in pipelines[name].nodes:
            assert name in nodes[node.name]["tags"], node.name
            assert name in nodes[node.name]["pipelines"], node.name


@pytest.mark.slow
def test_api_previews_the_reporting_outputs(viz_url):
    nodes = by_name(get_json(f"{viz_url}/api/main"))
    for name, preview_type in PREVIEWS.items():
        metadata = get_json(f"{viz_url}/api/nodes/{nodes[name]['id']}")
        assert metadata.get("preview_type") == preview_type, name
        preview = metadata["preview"]
        if preview_type == "ImagePreview":
            assert base64.b64decode(preview).startswith(b"\x89PNG"), name
        elif preview_type == "JSONPreview":
            assert json.loads(preview), name
        else:
            assert preview["columns"] and preview["data"], name
    # The catalog's preview_args show whole small tables: 10 classes and 2 averages.
    report = get_json(f"{viz_url}/api/nodes/{nodes['classification_report']['id']}")
    assert len(report["preview"]["data"]) == 12


def hide_feature_hints(browser, url: str) -> None:
    """Open ``url`` with kedro-viz's pop-up tour of new features turned off.

    The setting goes into localStorage before any script of the page runs (the app
    reads it once at start and then writes its own state over it).
    """
    browser.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {
            "source": "localStorage.setItem('KedroViz',"
            " JSON.stringify({showFeatureHints: false}));"
        },
    )
    browser.get(url)


def wait_for_graph(browser, names: set[str], screenshot: Path) -> None:
    """Wait until a graph node is drawn for each of ``names``."""

    def drawn(driver) -> set[str]:
        return set(
            driver.execute_script(
                "return Array.from(document.querySelectorAll('.pipeline-node'),"
                " n => n.getAttribute('data-node-fullname'));"
            )
        )

    try:
        WebDriverWait(browser, 90, poll_frequency=0.5).until(
            lambda driver: names <= drawn(driver)
        )
    except TimeoutException:
        browser.save_screenshot(str(screenshot))
        pytest.fail(f"not drawn within 90 s: {sorted(names - drawn(browser))}")


def dismiss_banners(browser) -> None:
    """Close kedro-viz's 'new version' banner, if any, so it hides no part of the graph."""
    for button in browser.find_elements(
        By.XPATH, "//button[normalize-space()='Dismiss']"
    ):
        with contextlib.suppress(Exception):
            button.click()


@pytest.mark.slow
def test_browser_draws_every_node_and_previews_a_plot(
    viz_url, default_pipeline, browser
):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    hide_feature_hints(browser, viz_url)
    names = default_pipeline["nodes"] | default_pipeline["datasets"]
    wait_for_graph(browser, names, SCREENSHOTS / "default_pipeline_failed.png")
    dismiss_banners(browser)
    time.sleep(1)  # let the zoom-to-fit animation settle, for the person looking
    layer_names = browser.find_elements(By.CSS_SELECTOR, ".pipeline-layer-name")
    assert [layer.text for layer in layer_names] == LAYERS
    browser.save_screenshot(str(SCREENSHOTS / "default_pipeline.png"))

    # The pipeline selector lists each registered pipeline.
    selector = browser.find_element(
        By.CSS_SELECTOR, "[data-test='kedro-pipeline-selector'] .dropdown__label"
    )
    selector.click()
    options = {
        option.get_attribute("title")
        for option in browser.find_elements(By.CSS_SELECTOR, ".menu-option__content")
    }
    assert {"__default__", *PIPELINES} <= options
    selector.click()

    # A reporting plot opens in the side panel as an image.
    node = browser.find_element(
        By.CSS_SELECTOR, ".pipeline-node[data-node-fullname='confusion_matrix_plot']"
    )
    browser.execute_script(
        "arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}));", node
    )
    image = WebDriverWait(browser, 30).until(
        lambda driver: driver.find_element(
            By.CSS_SELECTOR, ".pipeline-metadata__plot-image"
        )
    )
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    browser.save_screenshot(str(SCREENSHOTS / "confusion_matrix_preview.png"))


@contextlib.contextmanager
def static_file_server(directory: Path):
    """Serve ``directory`` over HTTP on a free loopback port, as any static host would."""
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(directory)
    )
    handler.log_message = lambda *args: None  # quiet
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.slow
def test_viz_build_writes_a_static_site_that_opens_without_kedro(
    smoke_project, default_pipeline, chromium_paths, browser
):
    result = subprocess.run(
        kedro_command("viz", "build", "--include-previews"),
        cwd=smoke_project,
        env=subprocess_env(smoke_project, KEDRO_ENV="smoke"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, output
    build = smoke_project / "build"
    # `kedro viz build` reports some failures but still exits 0: check what it wrote.
    assert (build / "index.html").is_file(), output
    main = json.loads((build / "api" / "main").read_text())
    assert_every_node_and_dataset_with_its_layer(main, default_pipeline)
    for pipeline in ("__default__", *PIPELINES):
        assert (build / "api" / "pipelines" / pipeline).is_file(), pipeline
    node_files = {path.name for path in (build / "api" / "nodes").iterdir()}
    assert {node["id"] for node in main["nodes"]} <= node_files
    plot = by_name(main)["confusion_matrix_plot"]["id"]
    metadata = json.loads((build / "api" / "nodes" / plot).read_text())
    assert metadata["preview_type"] == "ImagePreview"  # --include-previews

    # Any static file server will do: here Python's, with no Kedro behind it.
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with static_file_server(build) as url:
        hide_feature_hints(browser, url)
        names = default_pipeline["nodes"] | default_pipeline["datasets"]
        wait_for_graph(browser, names, SCREENSHOTS / "static_build_failed.png")
        dismiss_banners(browser)
        time.sleep(1)  # let the zoom-to-fit animation settle, for the person looking
        browser.save_screenshot(str(SCREENSHOTS / "static_build.png"))
