"""Nodes that export the trained model and check every export on the test set."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np

from cifar10_kedro.hardware import has_vnni
from cifar10_kedro.model_card import build_model_card, model_precision
from cifar10_kedro.pipelines.inference.params import InferenceParams
from cifar10_kedro.prediction import (
    ONNX_MODEL_VERSION,
    float32_inference_copy,
    predict_probabilities,
)

from .params import ExportParams

logger = logging.getLogger(__name__)


class ExportMismatchError(ValueError):
    """An exported graph does not compute what the Keras model it came from does."""


def make_inference_model(model: keras.Model) -> keras.Model:
    """Return the float32 inference copy of ``model``: no augmentation block, every
    layer float32, the trained weights (see ``prediction.float32_inference_copy``)."""
    copy = float32_inference_copy(model)
    logger.info(
        "Inference copy of '%s' (trained in %s): %d layers in float32.",
        model.name,
        model_precision(model),
        len(copy.layers),
    )
    return copy


def export_formats(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """Return ``model`` for ONNX and for the SavedModel: their datasets write it."""
    return model, model


def export_onnx(model: keras.Model) -> keras.Model:
    """Return ``model`` for ONNX alone (no TensorFlow): its dataset writes it."""
    return model


def quantize_int8(
    onnx_model: Any, x_val: np.ndarray, model_version: str, params: ExportParams
) -> Any:
    """Return ``onnx_model`` (float32) with its convolutions and matrix products in
    int8: onnxruntime's static quantization (QDQ, per-channel weights), the
    activations' ranges calibrated on the first ``params.int8.calibration_images``
    validation images, and ``model_version`` (the trained_model version it came from)
    in its metadata (``prediction.ONNX_MODEL_VERSION``). ``evaluate_exports`` checks
    its test accuracy."""
    import onnx  # noqa: PLC0415 - only the export needs it
    from onnxruntime.quantization import (  # noqa: PLC0415
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    images = x_val[: params.int8.calibration_images]
    name = onnx_model.graph.input[0].name
    reduce_range = params.int8.reduce_range
    if reduce_range == "auto":
        reduce_range = not has_vnni()
    logger.info(
        "Quantizing the ONNX graph to int8 (%s-bit weights), calibrated on %d "
        "validation images.",
        7 if reduce_range else 8,
        len(images),
    )

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(
                {name: images[i : i + params.batch_size]}
                for i in range(0, len(images), params.batch_size)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    # onnxruntime's quantization reads and writes files: a folder of the node's own.
    with tempfile.TemporaryDirectory(prefix="quantize_") as folder:
        source, prepared, quantized = (
            Path(folder) / f for f in ("float32.onnx", "prepared.onnx", "int8.onnx")
        )
        onnx.save(onnx_model, source)
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(quantized),
            Batches(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            # The probabilities stay float32: 8 bits would round them to 1/255.
            nodes_to_exclude=[
                n.name for n in onnx_model.graph.node if n.op_type == "Softmax"
            ],
        )
        int8 = onnx.load(quantized)
    onnx.helper.set_model_props(int8, {ONNX_MODEL_VERSION: model_version})
    return int8


def _saved_model_probabilities(
    restored: Any, images: np.ndarray, batch_size: int
) -> np.ndarray:
    return np.concatenate(
        [
            np.asarray(restored.serve(images[i : i + batch_size]))
            for i in range(0, len(images), batch_size)
        ]
    )


def _accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(probabilities.argmax(axis=1) == labels))


def _agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    return {
        "argmax_agreement": float(np.mean(a.argmax(axis=1) == b.argmax(axis=1))),
        "max_probability_difference": float(np.abs(a - b).max()),
    }


def evaluate_exports(
    trained_model: keras.Model,
    inference_model: keras.Model,
    onnx_model: Any,
    onnx_int8_model: Any,
    x_test: np.ndarray,
    y_test: np.ndarray,
    params: ExportParams,
    saved_model: Any = None,
) -> dict[str, Any]:
    """Return the test accuracy of the model as trained, its float32 copy and every
    exported graph (read back from its file), and how far each export is from the
    float32 copy.

    Raises ``ExportMismatchError`` when a float32 export's argmax agrees with the
    float32 copy on fewer than ``params.min_argmax_agreement`` of the test images or
    a probability differs by more than ``params.max_probability_difference``, or when
    the int8 graph's test accuracy is more than ``params.int8.max_accuracy_drop_points``
    below the float32 graph's.
    """
    batch = params.batch_size
    labels = np.asarray(y_test).astype(int)
    trained = predict_probabilities(trained_model, x_test, batch)
    copy = predict_probabilities(inference_model, x_test, batch)
    engines = {"onnx": predict_probabilities(onnx_model, x_test, batch)}
    if saved_model is not None:
        engines["saved_model"] = _saved_model_probabilities(saved_model, x_test, batch)

    metrics: dict[str, Any] = {
        "num_test_images": len(labels),
        "accuracy": {
            "trained_model": _accuracy(trained, labels),
            "float32_copy": _accuracy(copy, labels),
            **{name: _accuracy(p, labels) for name, p in engines.items()},
        },
        "float32_copy_vs_trained_model": _agreement(copy, trained),
    }
    problems = []
    for name, probabilities in engines.items():
        check = _agreement(probabilities, copy)
        metrics[f"{name}_vs_float32_copy"] = check
        if (
            check["argmax_agreement"] < params.min_argmax_agreement
            or check["max_probability_difference"] > params.max_probability_difference
        ):
            problems.append(
                f"{name}: argmax agreement {check['argmax_agreement']:.4%} (at least "
                f"{params.min_argmax_agreement:.2%} expected), largest probability "
                f"difference {check['max_probability_difference']:.2e} (at most "
                f"{params.max_probability_difference:.0e} expected)"
            )
    int8 = predict_probabilities(onnx_int8_model, x_test, batch)
    metrics["accuracy"]["onnx_int8"] = _accuracy(int8, labels)
    metrics["onnx_int8_vs_float32_copy"] = _agreement(int8, copy)
    drop = 100 * (metrics["accuracy"]["onnx"] - metrics["accuracy"]["onnx_int8"])
    metrics["onnx_int8_accuracy_drop_points"] = drop
    if drop > params.int8.max_accuracy_drop_points:
        problems.append(
            f"onnx_int8: test accuracy {metrics['accuracy']['onnx_int8']:.4f}, "
            f"{drop:.2f} points below the float32 graph's (at most "
            f"{params.int8.max_accuracy_drop_points} expected: "
            "export.int8.max_accuracy_drop_points; more calibration_images or the "
            "other export.int8.reduce_range may help)"
        )
    difference = 100 * (
        metrics["accuracy"]["onnx"] - metrics["accuracy"]["trained_model"]
    )
    metrics["onnx_minus_trained_accuracy_points"] = difference
    logger.info(
        "Test accuracy on %d images: trained model %.4f, float32 copy %.4f, %s.",
        len(labels),
        metrics["accuracy"]["trained_model"],
        metrics["accuracy"]["float32_copy"],
        ", ".join(f"{n} {metrics['accuracy'][n]:.4f}" for n in [*engines, "onnx_int8"]),
    )
    if problems:
        raise ExportMismatchError(
            "The exported model does not compute what its float32 Keras copy does on "
            "the test set; no model card was written:\n  - " + "\n  - ".join(problems)
        )
    if abs(difference) > params.max_accuracy_difference_points:
        logger.warning(
            "ONNX test accuracy differs from the trained model's by %.2f points "
            "(more than export.max_accuracy_difference_points=%s): the trained model "
            "computes in %s, the export in float32.",
            difference,
            params.max_accuracy_difference_points,
            model_precision(trained_model),
        )
    return metrics


def _onnx_spec(proto: Any, file: str, precision: str) -> dict[str, Any]:
    def names(values: Any) -> list[str]:
        return [v.name for v in values]

    return {
        "file": file,
        "input": names(proto.graph.input),
        "output": names(proto.graph.output),
        "opset": {o.domain or "ai.onnx": o.version for o in proto.opset_import},
        "precision": precision,
        "producer": f"{proto.producer_name} {proto.producer_version}".replace(
            " None", ""
        ).strip(),
    }


def make_model_card(
    trained_model: keras.Model,
    class_names: list[str],
    model_version: str,
    training_config: dict[str, Any],
    inference_params: InferenceParams,
    export_metrics: dict[str, Any],
    onnx_model: Any,
    onnx_int8_model: Any,
    training_plan: dict[str, Any],
) -> dict[str, Any]:
    """Return the model card of the export: classes, input and output, preprocessing,
    the training's fingerprint and plan, the model version and the test metrics."""
    exports = {
        "onnx": _onnx_spec(onnx_model, "model.onnx", "float32"),
        "onnx_int8": _onnx_spec(
            onnx_int8_model, "model.int8.onnx", "int8 (static, per-channel weights)"
        ),
    }
    if "saved_model" in export_metrics["accuracy"]:
        exports["saved_model"] = {
            "folder": "saved_model",
            "endpoint": "serve",
            "signature": "serving_default",
            "precision": "float32",
        }
    return build_model_card(
        model=trained_model,
        class_names=class_names,
        model_version=model_version,
        training_config=training_config,
        resize=inference_params.resize,
        max_pixels=inference_params.max_pixels,
        test_metrics=export_metrics,
        exports=exports,
        training_plan=training_plan,
    )
