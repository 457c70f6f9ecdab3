"""Project datasets for formats that kedro-datasets does not read."""

from .cifar10_dataset import CIFAR10Dataset

__all__ = ["CIFAR10Dataset"]
