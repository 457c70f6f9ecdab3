"""Experiment tracking with kedro-mlflow (conf/base/mlflow.yml; docs/tracking.md)."""

from .hook import TrackingHook

__all__ = ["TrackingHook"]
