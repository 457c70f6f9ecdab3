"""Export nodes and datasets on a small mixed-bfloat16 model built as training builds it."""

from __future__ import annotations

import json

import keras
import numpy as np
import onnxruntime as ort
import pytest
from kedro.io import Version

from cifar10_kedro.datasets.export_datasets import OnnxModelDataset, SavedModelDataset
from cifar10_kedro.pipelines.export.nodes import (
    ExportMismatchError,
    evaluate_exports,
    make_inference_model,
    make_model_card,
)
from cifar10_kedro.pipelines.model_training.architectures import (
    WHITENING_LAYER,
    assemble,
    whitening_weights,
)
from tests.conftest import OFFICIAL_CLASS_NAMES, base_params

EXPORT = base_params("export", {"batch_size": 16})


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def mixed_model(images, tmp_path_factory) -> keras.Model:
    """fast_cnn, small, mixed bfloat16, with augmentation, saved and loaded back."""
    keras.utils.set_random_seed(1)
    params = base_params(
        "model_training.model",
        {
            # ReLU: keras.models.clone_model (below) cannot rebuild the float32 copy's
            # GELU, prediction.gelu_erf, a plain function.
            "fast_cnn": {"stem": "whitening", "widths": [8, 16], "activation": "relu"},
            "augmentation_layers": {"rotation_degrees": 10, "width_shift": 0.1},
        },
    )
    model = assemble(params, "mixed_bfloat16", seed=1)
    model.get_layer(WHITENING_LAYER).set_weights(list(whitening_weights(images)))
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return keras.saving.load_model(path, compile=False, safe_mode=True)


def test_the_inference_copy_is_float32_without_augmentation(mixed_model, images):
    assert any(layer.name == "augmentation" for layer in mixed_model.layers)
    assert mixed_model.get_layer(WHITENING_LAYER).dtype_policy.name == "mixed_bfloat16"
    copy = make_inference_model(mixed_model)
    assert all(layer.name != "augmentation" for layer in copy.layers)
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    assert copy.inputs[0].dtype == "uint8" and copy.inputs[0].name == "image"
    kept = [layer for layer in mixed_model.layers if layer.name != "augmentation"]
    for original, copied in zip(kept, copy.layers, strict=True):
        for a, b in zip(original.get_weights(), copied.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    mixed = mixed_model.predict(images, verbose=0)
    single = copy.predict(images, verbose=0)
    assert single.dtype == np.float32
    # Only the arithmetic differs: bfloat16 against float32.
    assert np.abs(mixed - single).max() < 0.1


def test_onnx_and_saved_model_datasets_export_what_the_copy_computes(
    mixed_model, images, tmp_path
):
    copy = make_inference_model(mixed_model)
    expected = copy.predict(images, verbose=0)

    onnx_dataset = OnnxModelDataset(
        filepath=str(tmp_path / "model.onnx"), version=Version(None, None)
    )
    onnx_dataset.save(copy)
    proto = onnx_dataset.load()
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == ["probabilities"]
    session = ort.InferenceSession(proto.SerializeToString())
    probabilities = session.run(None, {"image": images})[0]
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    preview = json.loads(onnx_dataset.preview())
    assert preview["inputs"][0]["shape"] == ["batch", 32, 32, 3]

    saved_dataset = SavedModelDataset(
        filepath=str(tmp_path / "saved_model"), version=Version(None, None)
    )
    saved_dataset.save(copy)
    restored = saved_dataset.load()
    np.testing.assert_allclose(np.asarray(restored.serve(images)), expected, atol=1e-5)
    # Each under its own version folder.
    assert len(list((tmp_path / "model.onnx").iterdir())) == 1
    assert (next((tmp_path / "saved_model").iterdir()) / "saved_model").is_dir()


def test_evaluate_exports_measures_each_format_and_refuses_a_mismatch(
    mixed_model, images, tmp_path
):
    copy = make_inference_model(mixed_model)
    dataset = OnnxModelDataset(filepath=str(tmp_path / "m.onnx"))
    dataset.save(copy)
    labels = np.arange(len(images)) % 10
    metrics = evaluate_exports(
        mixed_model, copy, dataset.load(), images, labels, EXPORT
    )
    assert metrics["num_test_images"] == len(images)
    assert set(metrics["accuracy"]) == {"trained_model", "float32_copy", "onnx"}
    assert metrics["onnx_vs_float32_copy"]["argmax_agreement"] == 1.0
    assert metrics["onnx_vs_float32_copy"]["max_probability_difference"] < 1e-5

    # An ONNX graph of another model is caught.
    other = keras.models.clone_model(copy)
    other(images[:1])
    other_dataset = OnnxModelDataset(filepath=str(tmp_path / "other.onnx"))
    other_dataset.save(other)
    with pytest.raises(ExportMismatchError, match=r"onnx: argmax agreement"):
        evaluate_exports(
            mixed_model, copy, other_dataset.load(), images, labels, EXPORT
        )


def test_the_model_card(mixed_model, images, tmp_path):
    copy = make_inference_model(mixed_model)
    dataset = OnnxModelDataset(filepath=str(tmp_path / "m.onnx"))
    dataset.save(copy)
    labels = np.arange(len(images)) % 10
    metrics = evaluate_exports(
        mixed_model, copy, dataset.load(), images, labels, EXPORT
    )
    inference = base_params(
        "inference", {"resize": "pad", "batch_size": 8, "max_pixels": 1000}
    )
    training = {
        "fingerprint": "f" * 64,
        "precision": "mixed_bfloat16",
        "versions": {"keras": "3"},
    }
    card = make_model_card(
        mixed_model,
        OFFICIAL_CLASS_NAMES,
        "V7",
        training,
        inference,
        metrics,
        dataset.load(),
    )
    assert card["class_names"] == OFFICIAL_CLASS_NAMES
    assert card["model_version"] == "V7"
    assert card["input"] == {
        "name": "image",
        "dtype": "uint8",
        "shape": [None, 32, 32, 3],
        "layout": "NHWC",
        "channels": "RGB",
        "range": [0, 255],
    }
    assert card["preprocessing"]["resize"] == "pad"
    assert card["preprocessing"]["max_pixels"] == 1000
    assert card["trained_precision"] == "mixed_bfloat16"
    assert card["training"] == training
    assert card["exports"]["onnx"]["output"] == ["probabilities"]
    assert "saved_model" not in card["exports"]
    assert card["test_metrics"] is metrics
    json.dumps(card)  # JSON-ready
