"""Classify a user's image files with the trained model (batch inference)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
