"""Data-parallel training over two virtual CPU devices in one process (JAX).

XLA_FLAGS=--xla_force_host_platform_device_count=2 gives the process two CPU devices;
``data_parallel`` splits every global batch of 50 between them. The tiny model
trains with every ingredient of the recipe (whitening stem, BatchNorm, lookahead,
label smoothing, flips and translation) for 3 epochs of 4 steps.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.distributed.helpers import TRAIN_TINY, jax_environment, result
from tests.processes import run

pytest.importorskip("jax")

# Weights after 12 steps, data-parallel against one device at the same global batch:
# the same computation but for the order of floating-point sums (measured: at most
# 1.2e-7 apart; BatchNorm's statistics are over the global batch either way).
WEIGHT_TOLERANCE = 1e-5


@pytest.mark.slow
def test_two_devices_train_as_one_device_does(tmp_path):
    completed = run(
        [sys.executable, str(TRAIN_TINY), str(tmp_path), "none", "data_parallel"],
        env=jax_environment(XLA_FLAGS="--xla_force_host_platform_device_count=2"),
        timeout=600,
    )
    assert completed.returncode == 0, completed.output[-4000:]
    one, one_weights = result(tmp_path, "none-0")
    two, two_weights = result(tmp_path, "data_parallel-0")
    assert one["variable_devices"] == 1
    # Each variable was replicated on both devices while training.
    assert two["variable_devices"] == two["devices"] == 2
    assert two["process_count"] == 1
    assert two["loss"][-1] < two["loss"][0]  # it learns
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-5)
    np.testing.assert_allclose(two["val_loss"], one["val_loss"], rtol=1e-5)
    assert len(two_weights) == len(one_weights)
    for a, b in zip(two_weights, one_weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=WEIGHT_TOLERANCE)
