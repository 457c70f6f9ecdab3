"""Experiment tracking with kedro-mlflow (conf/base/mlflow.yml; README: Tracking)."""

from .hook import TrackingHook

__all__ = ["TrackingHook"]
