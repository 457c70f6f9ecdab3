"""Predictions of a trained model, shared by the inference pipeline, the export
pipeline, the HTTP service and the notebook."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

if TYPE_CHECKING:
    from onnx import ModelProto
else:  # importing onnx takes about a second: only code that runs a graph does
    ModelProto = Any

# The layer names that architectures.assemble gives every model.
AUGMENTATION_LAYER = "augmentation"
INPUT_NAME = "image"
# The metadata key under which the int8 ONNX export records the trained_model
# version it came from (quantize_int8), so that its predictions name it.
ONNX_MODEL_VERSION = "cifar10_kedro.model_version"


def _is_keras(model: Any) -> bool:
    # Anything with Keras' predict_on_batch predicts through it (test doubles too);
    # anything else is taken for an ONNX graph.
    return hasattr(model, "predict_on_batch")


def _shapes(model: keras.Model | ModelProto) -> tuple[tuple, int]:
    """The image shape a model takes and how many classes it predicts."""
    if _is_keras(model):
        return tuple(model.input_shape[1:]), model.output_shape[-1]

    def dims(value: Any) -> tuple:
        return tuple(d.dim_value or None for d in value.type.tensor_type.shape.dim)

    return dims(model.graph.input[0])[1:], dims(model.graph.output[0])[-1]


def check_model(model: keras.Model | ModelProto, class_names: list[str]) -> None:
    """Raise ValueError unless ``model`` (Keras, or an ONNX export) takes
    (N, 32, 32, 3) images and predicts one probability per class of ``class_names``."""
    shape, classes = _shapes(model)
    if shape != (32, 32, 3):
        raise ValueError(
            f"trained_model takes images of shape {shape}; expected (32, 32, 3) "
            "uint8, as this project's training writes."
        )
    if classes != len(class_names):
        raise ValueError(
            f"trained_model predicts {classes} classes but class_names "
            f"has {len(class_names)}; expected the same number."
        )


def onnx_predictor(model: ModelProto) -> Callable[[np.ndarray], np.ndarray]:
    """Return a function from uint8 images (N, 32, 32, 3) to their probabilities,
    computed by onnxruntime on the CPU (one session, made here)."""
    import onnxruntime as ort  # noqa: PLC0415 - only ONNX graphs need it

    session = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name

    def predict(images: np.ndarray) -> np.ndarray:
        return session.run(None, {name: images})[0]

    return predict


def onnx_model_version(model: ModelProto) -> str:
    """Return the trained_model version an int8 ONNX export came from.

    Raises ValueError for a graph that does not record it (exported before it did).
    """
    found = {p.key: p.value for p in model.metadata_props}
    if ONNX_MODEL_VERSION not in found:
        raise ValueError(
            f"The ONNX graph does not record the version of trained_model it came "
            f"from (metadata '{ONNX_MODEL_VERSION}'); export it again: kedro run "
            "--pipeline export."
        )
    return found[ONNX_MODEL_VERSION]


def predict_probabilities(
    model: keras.Model | ModelProto, images: np.ndarray, batch_size: int
) -> np.ndarray:
    """Return the class probabilities (N, classes) float32 of uint8 ``images``, predicted
    ``batch_size`` at a time by a Keras model or an ONNX graph (onnxruntime).

    Reporting, the inference pipeline, the export's checks and the service all predict
    through this function or ``predict_on_batch``, so that they agree exactly. Each
    batch goes to ``predict_on_batch`` rather than through ``model.predict``: on 2 CPU
    cores the latter's input pipeline (tf.data) competes with the model for the cores,
    and some passes ran at half the speed (``keras_model_predict_passes_img_s`` of
    benchmarks/inference_benchmark.py).
    """
    if len(images) == 0:
        return np.zeros((0, _shapes(model)[1]), dtype=np.float32)
    predict = model.predict_on_batch if _is_keras(model) else onnx_predictor(model)
    return np.concatenate(
        [
            np.asarray(predict(images[start : start + batch_size]))
            for start in range(0, len(images), batch_size)
        ]
    )


def top_classes(
    probabilities: np.ndarray, class_names: list[str], k: int
) -> list[list[tuple[str, float]]]:
    """Return, for each row, the ``k`` most probable (class, probability), best first.

    Ties keep the official class order (a stable sort).
    """
    k = min(k, probabilities.shape[1])
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [
        [(class_names[j], float(row[j])) for j in best]
        for row, best in zip(probabilities, order, strict=True)
    ]


def gelu_erf(x: Any) -> Any:
    """Exact GELU, ``0.5 x (1 + erf(x / sqrt 2))``: Keras' ``"gelu"`` written with
    ``erf``. TensorFlow's own gelu computes it with ``Erfc``, which ONNX has no
    operator for, so the exported copy uses this instead (same values to float
    rounding)."""
    return 0.5 * x * (1.0 + keras.ops.erf(x / math.sqrt(2.0)))


def _float32_config(config: dict[str, Any]) -> dict[str, Any]:
    config = dict(config)
    config["dtype"] = "float32"
    if config.get("activation") == "gelu":
        config["activation"] = gelu_erf
    return config


def float32_inference_copy(model: keras.Model) -> keras.Sequential:
    """Return the model's inference path in float32: every layer but the augmentation
    block, rebuilt with the float32 dtype policy, with the trained weights copied.

    The augmentation layers do nothing at inference, but exporters that trace the
    graph keep their random ops (which onnxruntime cannot run). A model trained in
    mixed precision keeps float32 weights, so the copy's weights are exact; only
    the arithmetic differs. The input stays uint8 (N, 32, 32, 3) named "image".
    GELU is written with ``erf`` (``gelu_erf``), which every exporter can express.
    """
    if not isinstance(model, keras.Sequential):
        raise TypeError(
            f"Expected the keras.Sequential that training writes; got {type(model).__name__}."
        )
    shape = tuple(model.input_shape[1:])
    layers = [layer for layer in model.layers if layer.name != AUGMENTATION_LAYER]
    copies = [
        type(layer).from_config(_float32_config(layer.get_config())) for layer in layers
    ]
    copy = keras.Sequential(
        [keras.Input(shape, dtype="uint8", name=INPUT_NAME), *copies],
        name=f"{model.name}_float32",
    )
    for source, target in zip(layers, copies, strict=True):
        target.set_weights(source.get_weights())
    # Keras' exporters take only a model that has been called once.
    copy(np.zeros((1, *shape), dtype="uint8"), training=False)
    return copy
