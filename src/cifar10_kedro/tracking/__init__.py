"""Experiment tracking with kedro-mlflow (conf/base/mlflow.yml; docs/tracking.md)."""

from .hook import TrackingHook, tracking_enabled

__all__ = ["TrackingHook", "tracking_enabled"]
