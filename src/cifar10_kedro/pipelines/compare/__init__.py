"""Train and report the notebook's configuration beside the default, and compare them."""

from .pipeline import VARIANTS, create_pipeline

__all__ = ["VARIANTS", "create_pipeline"]
