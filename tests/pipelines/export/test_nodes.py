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
    quantize_int8,
)
from cifar10_kedro.pipelines.model_training.architectures import (
    WHITENING_LAYER,
    assemble,
    whitening_weights,
)
from cifar10_kedro.prediction import onnx_model_version
from tests.conftest import OFFICIAL_CLASS_NAMES, base_params

EXPORT = base_params("export", {"batch_size": 16})
VERSION = "2026-12-03T10.00.00.000Z"  # the trained_model version exported


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


@pytest.mark.bfloat16_kernels
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


@pytest.fixture(scope="module")
def exported(mixed_model, images, tmp_path_factory) -> dict:
    """The float32 copy, its ONNX graph and the int8 graph quantized from it."""
    copy = make_inference_model(mixed_model)
    dataset = OnnxModelDataset(filepath=str(tmp_path_factory.mktemp("onnx") / "m.onnx"))
    dataset.save(copy)
    onnx = dataset.load()
    return {
        "copy": copy,
        "onnx": onnx,
        "int8": quantize_int8(onnx, images, VERSION, EXPORT),
    }


def test_the_int8_graph_computes_in_int8_what_the_float32_graph_does(exported, images):
    int8 = exported["int8"]
    operators = {node.op_type for node in int8.graph.node}
    # QDQ: the convolutions and the dense layer read int8 tensors.
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= operators
    weights = [i for i in int8.graph.initializer if i.data_type == 3]  # INT8
    assert weights, "no int8 weights"
    # It names the trained_model version it came from; the float32 graph does not.
    assert onnx_model_version(int8) == VERSION
    with pytest.raises(ValueError, match="export it again"):
        onnx_model_version(exported["onnx"])
    assert [i.name for i in int8.graph.input] == ["image"]
    assert [o.name for o in int8.graph.output] == ["probabilities"]
    float32 = ort.InferenceSession(exported["onnx"].SerializeToString())
    quantized = ort.InferenceSession(int8.SerializeToString())
    a = float32.run(None, {"image": images})[0]
    b = quantized.run(None, {"image": images})[0]
    np.testing.assert_allclose(b.sum(axis=1), 1.0, rtol=1e-4)
    assert np.abs(a - b).max() < 0.05  # rounding to 8 bits, not another model


def test_int8_calibration_reads_only_the_images_it_is_given(exported, images):
    """Calibrated on 8 images or on 40, the graphs differ: the images decide the
    ranges (the pipeline gives it validation images, never test images)."""
    few = base_params("export", {"batch_size": 4, "int8": {"calibration_images": 8}})
    a = quantize_int8(exported["onnx"], images, VERSION, few)
    b = exported["int8"]
    from onnx.numpy_helper import to_array  # noqa: PLC0415

    scales = [
        {i.name: to_array(i) for i in g.graph.initializer if i.name.endswith("_scale")}
        for g in (a, b)
    ]
    assert scales[0].keys() == scales[1].keys()
    assert any(not np.array_equal(scales[0][k], scales[1][k]) for k in scales[0])


def shifted_classes(model: keras.Model, images: np.ndarray) -> keras.Model:
    """A copy of ``model`` whose classes are shifted by one (its dense layer's outputs
    rolled): its argmax differs from ``model``'s on every image."""
    shifted = keras.models.clone_model(model)
    shifted(images[:1])
    shifted.set_weights(model.get_weights())
    dense = next(
        layer for layer in shifted.layers if isinstance(layer, keras.layers.Dense)
    )
    dense.set_weights([np.roll(w, 1, axis=-1) for w in dense.get_weights()])
    return shifted


@pytest.mark.bfloat16_kernels
def test_evaluate_exports_measures_each_format_and_refuses_a_mismatch(
    mixed_model, exported, images, tmp_path
):
    copy = exported["copy"]
    labels = np.arange(len(images)) % 10
    metrics = evaluate_exports(
        mixed_model, copy, exported["onnx"], exported["int8"], images, labels, EXPORT
    )
    assert metrics["num_test_images"] == len(images)
    assert set(metrics["accuracy"]) == {
        "trained_model",
        "float32_copy",
        "onnx",
        "onnx_int8",
    }
    assert metrics["onnx_vs_float32_copy"]["argmax_agreement"] == 1.0
    assert metrics["onnx_vs_float32_copy"]["max_probability_difference"] < 1e-5
    assert metrics["onnx_int8_accuracy_drop_points"] == pytest.approx(
        100 * (metrics["accuracy"]["onnx"] - metrics["accuracy"]["onnx_int8"])
    )

    # An ONNX graph of another model is caught. Another model that disagrees on
    # every image: a fresh initialisation of this untrained one may well predict the
    # same single class everywhere.
    other = OnnxModelDataset(filepath=str(tmp_path / "other.onnx"))
    other.save(shifted_classes(copy, images))
    with pytest.raises(ExportMismatchError, match=r"onnx: argmax agreement"):
        evaluate_exports(
            mixed_model, copy, other.load(), exported["int8"], images, labels, EXPORT
        )


@pytest.mark.bfloat16_kernels
def test_an_int8_graph_that_loses_accuracy_is_refused(
    mixed_model, exported, images, tmp_path
):
    """An int8 graph whose classes are shifted by one (its dense layer's outputs
    rolled): wrong wherever the float32 graph is right."""
    copy = exported["copy"]
    labels = copy.predict(images, verbose=0).argmax(axis=1)  # float32: all right
    dataset = OnnxModelDataset(filepath=str(tmp_path / "shifted.onnx"))
    dataset.save(shifted_classes(copy, images))
    wrong = quantize_int8(dataset.load(), images, VERSION, EXPORT)
    with pytest.raises(ExportMismatchError, match=r"onnx_int8: test accuracy .* below"):
        evaluate_exports(
            mixed_model, copy, exported["onnx"], wrong, images, labels, EXPORT
        )


@pytest.mark.bfloat16_kernels
def test_the_model_card(mixed_model, exported, images):
    copy = exported["copy"]
    labels = np.arange(len(images)) % 10
    metrics = evaluate_exports(
        mixed_model, copy, exported["onnx"], exported["int8"], images, labels, EXPORT
    )
    inference = base_params(
        "inference", {"resize": "pad", "batch_size": 8, "max_pixels": 1000}
    )
    training = {
        "fingerprint": "f" * 64,
        "precision": "mixed_bfloat16",
        "versions": {"keras": "3"},
    }
    plan = {"configured_epochs": 10, "epochs": 7, "time_budget_minutes": 30.0}
    card = make_model_card(
        mixed_model,
        OFFICIAL_CLASS_NAMES,
        "V7",
        training,
        inference,
        metrics,
        exported["onnx"],
        exported["int8"],
        plan,
    )
    assert card["training_plan"] == plan
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
    assert card["exports"]["onnx_int8"]["file"] == "model.int8.onnx"
    assert card["exports"]["onnx_int8"]["precision"].startswith("int8")
    assert "saved_model" not in card["exports"]
    assert card["test_metrics"] is metrics
    json.dumps(card)  # JSON-ready
