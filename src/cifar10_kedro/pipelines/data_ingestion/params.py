"""Typed parameters of the ``data_ingestion`` pipeline (``params:data_ingestion``)."""

from __future__ import annotations

from cifar10_kedro.params_base import OpenUnitFloat, Params, PositiveInt, Seed


class DataIngestionParams(Params):
    """How the raw images become the train, validation and test arrays."""

    seed: Seed
    # Fraction of the training images held out for early stopping, checkpoint
    # selection and every choice made "on validation".
    validation_fraction: OpenUnitFloat
    # Images kept per class (None keeps every image); the smoke environment subsamples.
    train_per_class: PositiveInt | None
    test_per_class: PositiveInt | None
    # The notebook's sample grid: this many training images per class.
    sample_grid_per_class: PositiveInt
