"""Load, validate and split CIFAR-10."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
