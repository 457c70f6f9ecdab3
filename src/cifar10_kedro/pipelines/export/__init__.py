"""Export the trained model as ONNX and a TensorFlow SavedModel, with a model card."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
