"""Batch inference with the int8 ONNX export instead of the Keras model."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
