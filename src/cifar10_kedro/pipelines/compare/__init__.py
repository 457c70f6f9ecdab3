"""Train and report each variant (conf/base/globals.yml) beside the default, and compare
them."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
