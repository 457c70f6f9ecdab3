"""`kedro viz run` and `kedro viz build`: the DAG, its layers and previews, in a browser."""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
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

from cifar10_kedro.pipelines.names import TRAINS_MODEL
from tests.exploring.conftest import TEST_OUTPUT, kedro_viz_server, subprocess_env
from tests.processes import free_port, kedro

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
ON_DEMAND = ["inference", "inference_int8", "export", "tta_selection"]
PIPELINES = ["data_ingestion", "model_training", "reporting", "compare", *ON_DEMAND]
# The pipelines of the default run; `compare` adds the variants to them.
DEFAULT_PARTS = ["data_ingestion", "model_training", "reporting"]
# Results and the preview each gets in the side panel (kedro-datasets' own, and
# KerasModelDataset's for the model).
PREVIEWS = {
    "sample_grid": "ImagePreview",
    "loss_curve": "ImagePreview",
    "accuracy_curve": "ImagePreview",
    "confusion_matrix_plot": "ImagePreview",
    "reliability_plot": "ImagePreview",
    "confident_mistakes_plot": "ImagePreview",
    "dataset_summary": "JSONPreview",
    "test_metrics": "JSONPreview",
    "validation_metrics": "JSONPreview",
    "training_config": "JSONPreview",
    "trained_model": "JSONPreview",
    "classification_report": "TablePreview",
    "training_history": "TablePreview",
    "test_predictions": "TablePreview",
}
# The compare pipeline trains each variant under its namespace.
VARIANT = "notebook"
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
    # Each pipeline's tag, and the training node's own (the hooks key on it).
    assert {tag["id"] for tag in main["tags"]} == {*PIPELINES, TRAINS_MODEL}
    bootstrap_project(smoke_project)
    for name in [*DEFAULT_PARTS, *ON_DEMAND]:
        shown = (
            main
            if name in DEFAULT_PARTS
            else get_json(f"{viz_url}/api/pipelines/{name}")
        )
        nodes = by_name(shown)
        for node in pipelines[name].nodes:
            assert name in nodes[node.name]["tags"], node.name
            assert name in nodes[node.name]["pipelines"], node.name
            if name in DEFAULT_PARTS:
                assert "compare" in nodes[node.name]["pipelines"], node.name


def by_full_name(pipeline: dict) -> dict[str, dict]:
    """Nodes by their full name (a namespaced task's ``name`` is its short name)."""
    return {node.get("full_name", node["name"]): node for node in pipeline["nodes"]}


@pytest.mark.slow
def test_api_shows_the_notebook_variant_as_a_modular_pipeline(viz_url, smoke_project):
    compare = get_json(f"{viz_url}/api/pipelines/compare")
    assert compare["selected_pipeline"] == "compare"
    nodes = by_full_name(compare)
    bootstrap_project(smoke_project)
    expected = {node.name for node in pipelines["compare"].nodes}
    assert expected <= nodes.keys()
    for name in expected:
        assert "compare" in nodes[name]["pipelines"], name

    # One collapsible node for the variant, at the top level of the graph.
    assert nodes[VARIANT]["type"] == "modularPipeline"
    modules = compare["modular_pipelines"]
    assert {"id": VARIANT, "type": "modularPipeline"} in modules["__root__"]["children"]
    module = modules[VARIANT]
    ids = {node["id"]: name for name, node in nodes.items()}
    inside = {ids[child["id"]] for child in module["children"]}
    inputs = {ids[i] for i in module["inputs"]}
    outputs = {ids[i] for i in module["outputs"]}
    # Every task of the variant is in it, and every dataset of its own.
    tasks = {
        node.name for node in pipelines["compare"].nodes if node.namespace == VARIANT
    }
    assert tasks and tasks <= inside
    for name in tasks:
        assert nodes[name]["modular_pipelines"] == [VARIANT], name
    own = {
        name
        for name in pipelines["compare"].datasets()
        if name.startswith(f"{VARIANT}.")
    }
    # Its datasets are inside it or its outputs, but for the Keras callbacks that a
    # hook gives its training (an input of the variant, empty in the catalog).
    assert own - {f"{VARIANT}.training_callbacks"} <= inside | outputs
    assert f"{VARIANT}.training_callbacks" in inputs
    assert {f"{VARIANT}.trained_model", f"{VARIANT}.training_config"} <= inside
    # It reads the arrays ingested once, and its own parameters.
    assert {"x_train", "y_train", "x_val", "y_val", "x_test", "y_test"} <= inputs
    assert f"params:{VARIANT}.model_training.fit" in inputs
    assert f"{VARIANT}.test_metrics" in outputs
    # The comparison and the default run's nodes are outside it.
    assert nodes["compare_variants"]["modular_pipelines"] in (None, [])
    assert nodes["train_model"]["modular_pipelines"] in (None, [])
    assert "train_model" not in inside


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
    metrics = json.loads(
        get_json(f"{viz_url}/api/nodes/{nodes['test_metrics']['id']}")["preview"]
    )
    assert {"accuracy", "log_loss", "expected_calibration_error"} <= set(metrics)
    validation = json.loads(
        get_json(f"{viz_url}/api/nodes/{nodes['validation_metrics']['id']}")["preview"]
    )
    assert {"num_validation_images", "accuracy", "log_loss"} <= set(validation)


@pytest.mark.slow
def test_api_previews_the_trained_model_from_its_file(viz_url, smoke_project):
    """KerasModelDataset's preview: the layers, read from the archive's
    configuration (kedro viz builds no model)."""
    nodes = by_name(get_json(f"{viz_url}/api/main"))
    metadata = get_json(f"{viz_url}/api/nodes/{nodes['trained_model']['id']}")
    assert metadata["type"].endswith("KerasModelDataset")
    assert metadata["preview_type"] == "JSONPreview"
    preview = json.loads(metadata["preview"])
    assert preview["class"] == "Sequential"
    # conf/smoke trains conf/base's architecture.
    assert preview["name"] == "fast_cnn"
    assert preview["layers"][0] == "InputLayer image"
    assert preview["layers"][-1] == "Activation softmax"
    assert any(layer.startswith("Conv2D ") for layer in preview["layers"])


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


def drawn_node_classes(browser) -> dict[str, str]:
    """The graph's drawn nodes: full name -> CSS classes."""
    return dict(
        browser.execute_script(
            "return Array.from(document.querySelectorAll('.pipeline-node'),"
            " n => [n.getAttribute('data-node-fullname'), n.getAttribute('class')]);"
        )
    )


@pytest.mark.slow
def test_browser_draws_the_compare_pipeline_with_the_variant_collapsed(
    viz_url, browser
):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # kedro-viz opens the pipeline that the URL's `pid` names.
    hide_feature_hints(browser, f"{viz_url}/?pid=compare")
    names = {
        VARIANT,
        "train_model",
        "compare_variants",
        "comparison",
        "comparison_plot",
        f"{VARIANT}.test_metrics",
        f"{VARIANT}.training_history",
    }
    wait_for_graph(browser, names, SCREENSHOTS / "compare_pipeline_failed.png")
    dismiss_banners(browser)
    time.sleep(1)  # let the zoom-to-fit animation settle, for the person looking
    browser.save_screenshot(str(SCREENSHOTS / "compare_pipeline.png"))
    drawn = drawn_node_classes(browser)
    # The variant is one node, a modular pipeline, until expanded: none of its
    # inner nodes is drawn.
    assert "pipeline-node--modularPipeline" in drawn[VARIANT].split()
    assert f"{VARIANT}.trained_model" not in drawn
    assert f"{VARIANT}.training_config" not in drawn
    selector = browser.find_element(
        By.CSS_SELECTOR, "[data-test='kedro-pipeline-selector'] .dropdown__label"
    )
    assert selector.text == "compare"


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
    result = kedro(
        smoke_project,
        "viz",
        "build",
        "--include-previews",
        env=subprocess_env(smoke_project, KEDRO_ENV="smoke"),
        timeout=300,
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
    compare = json.loads((build / "api" / "pipelines" / "compare").read_text())
    assert by_full_name(compare)[VARIANT]["type"] == "modularPipeline"
    node_files = {path.name for path in (build / "api" / "nodes").iterdir()}
    assert {node["id"] for node in main["nodes"]} <= node_files
    plot = by_name(main)["confusion_matrix_plot"]["id"]
    metadata = json.loads((build / "api" / "nodes" / plot).read_text())
    assert metadata["preview_type"] == "ImagePreview"  # --include-previews
    model = by_name(main)["trained_model"]["id"]
    metadata = json.loads((build / "api" / "nodes" / model).read_text())
    assert metadata["preview_type"] == "JSONPreview"
    assert json.loads(metadata["preview"])["class"] == "Sequential"

    # Any static file server will do: here Python's, with no Kedro behind it.
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with static_file_server(build) as url:
        hide_feature_hints(browser, url)
        names = default_pipeline["nodes"] | default_pipeline["datasets"]
        wait_for_graph(browser, names, SCREENSHOTS / "static_build_failed.png")
        dismiss_banners(browser)
        time.sleep(1)  # let the zoom-to-fit animation settle, for the person looking
        browser.save_screenshot(str(SCREENSHOTS / "static_build.png"))
