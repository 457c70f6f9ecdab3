"""The float32 inference copy of a GELU model exports to ONNX (TensorFlow's own gelu
uses Erfc, which ONNX has no operator for) and computes what the model does."""

from __future__ import annotations

import keras
import numpy as np
import onnxruntime as ort
import pytest

from cifar10_kedro.datasets.export_datasets import OnnxModelDataset
from cifar10_kedro.prediction import float32_inference_copy


@pytest.fixture(scope="module")
def gelu_model() -> keras.Sequential:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3), dtype="uint8"),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(8, 3, padding="same"),
            keras.layers.Activation("gelu"),
            keras.layers.GlobalMaxPooling2D(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    return model


def test_the_copy_computes_gelu_with_erf(gelu_model):
    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), np.uint8)
    copy = float32_inference_copy(gelu_model)
    assert all(layer.get_config().get("activation") != "gelu" for layer in copy.layers)
    np.testing.assert_allclose(
        copy.predict(images, verbose=0),
        gelu_model.predict(images, verbose=0),
        atol=1e-6,
    )


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf2onnx")
def test_the_copy_exports_to_onnx_and_matches(gelu_model, tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (16, 32, 32, 3), np.uint8)
    copy = float32_inference_copy(gelu_model)
    dataset = OnnxModelDataset(filepath=str(tmp_path / "model.onnx"))
    dataset.save(copy)  # the ONNX checker refused Erfc before
    session = ort.InferenceSession(
        str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    (probabilities,) = session.run(None, {"image": images})
    np.testing.assert_allclose(
        probabilities, copy.predict(images, verbose=0), atol=1e-5
    )
