"""Choose the test-time augmentation on the validation split, once."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
