"""The one node ``inference_int8`` adds to the inference pipeline's."""

from __future__ import annotations

from cifar10_kedro.prediction import ModelProto, onnx_model_version


def exported_model_version(model: ModelProto) -> str:
    """Return the trained_model version the int8 ONNX export ``model`` came from (its
    metadata; ``export.nodes.quantize_int8`` writes it)."""
    return onnx_model_version(model)
