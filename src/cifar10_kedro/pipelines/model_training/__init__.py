"""Build, compile and train the Keras model."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
