"""Evaluate the trained model on the test set and plot the results."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
