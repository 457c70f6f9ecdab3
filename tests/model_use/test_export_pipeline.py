"""`kedro run --pipeline export` on a trained project, checked against Keras on the
whole test set (10,000 images) with real onnxruntime and TensorFlow."""

from __future__ import annotations

import io
import json
import pickle
import shutil
from pathlib import Path

import keras
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

from cifar10_kedro.prediction import float32_inference_copy
from tests.conftest import OFFICIAL_CLASS_NAMES, base_params
from tests.model_use.conftest import ENV, EXPORTS, run_project
from tests.model_use.server import running_server, serve_once
from tests.pipelines.test_pipelines import latest, versions

pytestmark = pytest.mark.slow


def test_serving_the_int8_engine_before_any_export_is_a_clear_error(trained_project):
    """Before `kedro run --pipeline export` (its outputs, if another test made them,
    are moved aside): the command says how to make the export."""
    exports = trained_project / "data" / ENV / EXPORTS
    aside = exports.with_name("exports.aside")
    if exports.exists():
        exports.rename(aside)
    try:
        result = serve_once(trained_project, "--engine", "onnx_int8", timeout=300)
    finally:
        if aside.exists():
            shutil.rmtree(exports, ignore_errors=True)
            aside.rename(exports)
    assert result.returncode != 0
    assert "No int8 export of trained_model version" in result.output
    assert "kedro run --pipeline export --load-versions trained_model:" in result.output


def test_one_version_of_each_export(exported):
    names = ["model.onnx", "model.int8.onnx", "saved_model", "model_card.json"]
    found = {name: versions(exported, f"{EXPORTS}/{name}") for name in names}
    assert all(len(v) == 1 for v in found.values()), found
    assert len({v[0] for v in found.values()}) == 1  # one run, one version
    assert latest(exported, f"{EXPORTS}/model.onnx").is_file()
    assert (latest(exported, f"{EXPORTS}/saved_model") / "saved_model.pb").is_file()


def load_test_set(root: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(root / "05_model_input/x_test.pkl", "rb") as f:
        x_test = pickle.load(f)
    with open(root / "05_model_input/y_test.pkl", "rb") as f:
        y_test = pickle.load(f)
    return x_test, np.asarray(y_test)


def session_of(root: Path, name: str) -> ort.InferenceSession:
    """onnxruntime's own session of the newest export ``name`` (not the project's)."""
    return ort.InferenceSession(
        str(latest(root, f"{EXPORTS}/{name}")), providers=["CPUExecutionProvider"]
    )


def run_in_batches(session: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    """The session's probabilities for ``x``, 1000 images at a time."""
    return np.concatenate(
        [
            session.run(None, {"image": x[i : i + 1000]})[0]
            for i in range(0, len(x), 1000)
        ]
    )


def test_onnx_matches_the_float32_keras_copy_on_the_test_set(exported):
    x_test, y_test = load_test_set(exported)
    assert len(x_test) == 10_000
    model = keras.saving.load_model(
        latest(exported, "06_models/model.keras"), compile=False, safe_mode=True
    )
    copy = float32_inference_copy(model)
    expected = copy.predict(x_test, batch_size=1000, verbose=0)

    session = session_of(exported, "model.onnx")
    (image,) = session.get_inputs()
    assert (image.name, image.type, image.shape) == (
        "image",
        "tensor(uint8)",
        ["batch", 32, 32, 3],
    )
    assert session.get_outputs()[0].type == "tensor(float)"
    onnx = run_in_batches(session, x_test)
    agreement = np.mean(onnx.argmax(axis=1) == expected.argmax(axis=1))
    assert agreement >= 0.999
    assert np.abs(onnx - expected).max() < 1e-3
    np.testing.assert_allclose(onnx.sum(axis=1), 1.0, atol=1e-5)

    restored = tf.saved_model.load(str(latest(exported, f"{EXPORTS}/saved_model")))
    saved = np.asarray(restored.serve(x_test[:1000]))
    assert np.abs(saved - expected[:1000]).max() < 1e-3

    # The trained model and its ONNX export: test accuracy within 0.3 points.
    trained = model.predict(x_test, batch_size=1000, verbose=0)
    accuracy = {
        "trained": np.mean(trained.argmax(axis=1) == y_test),
        "onnx": np.mean(onnx.argmax(axis=1) == y_test),
    }
    assert abs(accuracy["trained"] - accuracy["onnx"]) <= 0.003, accuracy


def test_the_int8_graph_keeps_the_float32_graphs_accuracy(exported):
    """Calibrated on validation images, checked on the 10,000 test images: at most
    export.int8.max_accuracy_drop_points below the float32 graph (conf/smoke's: its
    model is barely above chance)."""
    x_test, y_test = load_test_set(exported)
    accuracy = {}
    for name in ("model.onnx", "model.int8.onnx"):
        predicted = run_in_batches(session_of(exported, name), x_test).argmax(axis=1)
        accuracy[name] = float(np.mean(predicted == y_test))
    allowed = base_params("export", env=ENV).int8.max_accuracy_drop_points
    assert 100 * (accuracy["model.onnx"] - accuracy["model.int8.onnx"]) <= allowed
    card = json.loads(latest(exported, f"{EXPORTS}/model_card.json").read_text())
    assert card["test_metrics"]["accuracy"]["onnx_int8"] == pytest.approx(
        accuracy["model.int8.onnx"]
    )
    assert card["exports"]["onnx_int8"]["file"] == "model.int8.onnx"


def test_the_model_card(exported, trained_project):
    card = json.loads(latest(exported, f"{EXPORTS}/model_card.json").read_text())
    assert card["class_names"] == OFFICIAL_CLASS_NAMES
    assert card["model_version"] == versions(exported, "06_models/model.keras")[-1]
    assert card["input"]["dtype"] == "uint8" and card["input"]["shape"] == [
        None,
        32,
        32,
        3,
    ]
    assert card["preprocessing"]["resize"] == "crop"
    assert card["exports"]["onnx"]["input"] == ["image"]
    assert card["exports"]["saved_model"]["endpoint"] == "serve"
    metrics = card["test_metrics"]
    assert metrics["num_test_images"] == 10_000
    assert metrics["onnx_vs_float32_copy"]["argmax_agreement"] >= 0.999
    assert abs(metrics["onnx_minus_trained_accuracy_points"]) <= 0.3
    # Reporting's plain accuracy of the same model, on the same test set.
    reported = json.loads(
        latest(exported, "08_reporting/test_metrics.json").read_text()
    )
    assert metrics["accuracy"]["trained_model"] == pytest.approx(reported["accuracy"])

    # The training's own configuration, saved with the model under its version.
    config = json.loads(latest(exported, "06_models/training_config.json").read_text())
    assert card["training"]["fingerprint"] == config["fingerprint"]
    plan = json.loads(latest(exported, "06_models/training_plan.json").read_text())
    assert card["training_plan"] == plan
    assert plan["epochs"] == plan["configured_epochs"]  # no budget


def test_kedro_serve_answers_with_the_int8_graph(exported, trained_project, tmp_path):
    """`kedro serve --engine onnx_int8`: the answers are the int8 export's."""
    import httpx  # noqa: PLC0415

    x_test, _ = load_test_set(exported)
    expected = session_of(exported, "model.int8.onnx").run(None, {"image": x_test[:4]})[
        0
    ]
    files = []
    for i, image in enumerate(x_test[:4]):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")  # lossless: same pixels
        files.append(("files", (f"{i}.png", buffer.getvalue(), "image/png")))
    log = tmp_path / "serve.log"
    with running_server(trained_project, log, "--engine", "onnx_int8") as url:
        answer = httpx.post(f"{url}/v1/predict?top_k=1", files=files, timeout=60)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert [p["file"] for p in predictions] == [f"{i}.png" for i in range(4)]
    classes = [OFFICIAL_CLASS_NAMES[i] for i in expected.argmax(axis=1)]
    assert [p["class"] for p in predictions] == classes
    np.testing.assert_allclose(
        [p["confidence"] for p in predictions], expected.max(axis=1), rtol=1e-4
    )
    assert "with the onnx_int8 engine" in log.read_text()


def test_the_inference_int8_pipeline_classifies_with_the_int8_graph(
    exported, trained_project, test_image_folder
):
    """`kedro run --pipeline inference_int8`: the inference pipeline's outputs, the
    int8 export's predictions, named with the trained_model version exported."""
    from tests.model_use.test_inference_pipeline import (  # noqa: PLC0415
        OUTPUTS,
        official_order,
    )

    before = versions(exported, OUTPUTS[0])
    run_project(
        trained_project,
        runtime_params={"inference": {"input_path": str(test_image_folder)}},
        pipeline_names=["inference_int8"],
    )
    assert len(versions(exported, OUTPUTS[0])) == len(before) + 1
    assert all(latest(exported, output).is_file() for output in OUTPUTS)
    table = pd.read_csv(latest(exported, OUTPUTS[0])).set_index("file")
    ours = table.loc[official_order(test_image_folder)]
    assert set(ours["model_version"]) == {
        versions(exported, "06_models/model.keras")[-1]
    }

    x_test, _ = load_test_set(exported)
    expected = run_in_batches(session_of(exported, "model.int8.onnx"), x_test)
    classes = [OFFICIAL_CLASS_NAMES[i] for i in expected.argmax(axis=1)]
    assert (ours["predicted_class"].to_numpy() == classes).all()
    np.testing.assert_allclose(
        ours["confidence"].to_numpy(), expected.max(axis=1), atol=1e-5
    )
