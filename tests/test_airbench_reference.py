"""The reference benchmark's data preparation (the training itself needs a CUDA GPU
and PyTorch: benchmarks/airbench_reference.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import benchmark_script


@pytest.fixture(scope="module")
def reference():
    return benchmark_script("airbench_reference")


def _data(n: int = 50) -> dict:
    x = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones(
        (1, 32, 32, 3), np.uint8
    )
    return {
        "x_train": x,
        "y_train": np.arange(n) % 10,
        "x_test": x[:10],
        "y_test": np.arange(10),
    }


def test_the_whole_training_set_by_default(reference) -> None:
    arrays = reference.reference_arrays(_data(), None)
    assert len(arrays["train"][0]) == 50  # noqa: PLR2004
    assert len(arrays["test"][0]) == 10  # noqa: PLR2004


def test_a_subset_is_random_seeded_and_keeps_images_with_their_labels(
    reference,
) -> None:
    first = reference.reference_arrays(_data(), 30)
    again = reference.reference_arrays(_data(), 30)
    x, y = first["train"]
    assert len(x) == 30 and len(set(x[:, 0, 0, 0])) == 30  # noqa: PLR2004
    assert not np.array_equal(x[:, 0, 0, 0], np.arange(30))  # shuffled, not a prefix
    np.testing.assert_array_equal(x, again["train"][0])
    np.testing.assert_array_equal(y, x[:, 0, 0, 0] % 10)


@pytest.mark.parametrize("size", [0, 51])
def test_a_subset_size_out_of_range_is_refused(reference, size) -> None:
    with pytest.raises(ValueError, match="--train-images must be in 1..50"):
        reference.reference_arrays(_data(), size)
