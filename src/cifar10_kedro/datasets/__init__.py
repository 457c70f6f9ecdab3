"""Project datasets for formats that kedro-datasets does not read."""

from __future__ import annotations

from typing import Any

from .cifar10_dataset import CIFAR10Dataset

__all__ = ["CIFAR10Dataset", "KerasModelDataset"]


def __getattr__(name: str) -> Any:
    # Imported on first use: it imports Keras, which the raw-data loader does not need.
    if name == "KerasModelDataset":
        from .keras_model_dataset import KerasModelDataset  # noqa: PLC0415

        return KerasModelDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
