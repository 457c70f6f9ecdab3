"""Each process's share of the batches, and the refusals, without starting JAX jobs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cifar10_kedro.pipelines.model_training import distribution
from cifar10_kedro.pipelines.model_training.batches import (
    BatchShard,
    TrainingBatches,
    validation_batch_size,
    validation_inputs,
)
from cifar10_kedro.pipelines.model_training.distribution import (
    DistributionError,
    configure,
)
from cifar10_kedro.pipelines.model_training.params import (
    BatchAugmentationParams,
    DistributionParams,
)
from tests.pipelines.model_training.test_batches import images


def _batches(shard: BatchShard, **kwargs) -> TrainingBatches:
    x, y = images(40)
    options = {"batch_size": 16, "drop_remainder": False} | kwargs
    return TrainingBatches(
        x,
        y,
        seed=3,
        augmentation=BatchAugmentationParams(flip="random", translate=2),
        shard=shard,
        **options,
    )


@pytest.mark.parametrize(
    ("devices", "per_process"), [(2, 1), (4, 1), (4, 2)], ids=["2x1", "4x1", "2x2"]
)
def test_the_processes_parts_make_up_the_one_device_batch(devices, per_process):
    whole = _batches(BatchShard())
    processes = [
        _batches(BatchShard(devices, tuple(range(p, p + per_process))))
        for p in range(0, devices, per_process)
    ]
    for epoch in range(2):
        for step in range(whole.steps_per_epoch):  # 16, 16 and the last 8
            x, y = whole.batch(epoch, step)
            parts = [b.batch(epoch, step) for b in processes]
            assert len(parts[0][1]) == len(y) * per_process // devices
            np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), x)
            np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), y)


def test_validation_parts_are_each_batchs_rows_of_the_process():
    x, y = images(20)
    shards = [BatchShard(2, (0,)), BatchShard(2, (1,))]
    parts = [validation_inputs(x, y, 8, shard) for shard in shards]
    size = validation_batch_size(8, shards[0])
    assert size == 4
    # Keras cuts each process's arrays into batches of 4: batch k of process p is
    # rows [p * 4, p * 4 + 4) of the one-device batch k (the last: 2 of 4).
    for start, local in ((0, 0), (8, 4), (16, 8)):
        batch = y[start : start + 8]
        got = np.concatenate([p[1][local : local + len(batch) // 2] for p in parts])
        np.testing.assert_array_equal(got, batch)


def test_batches_that_devices_cannot_split_are_refused_with_the_parameter():
    with pytest.raises(ValueError, match=r"model_training.fit.batch_size is 16, .*3"):
        _batches(BatchShard(3, (0,)))
    with pytest.raises(ValueError, match=r"last training batch .* has 8 images"):
        _batches(BatchShard(16, (0,)), batch_size=32)
    _batches(BatchShard(16, (0,)), batch_size=32, drop_remainder=True)  # fine
    x, y = images(18)
    with pytest.raises(ValueError, match=r"validation_fraction"):
        validation_inputs(x, y, 8, BatchShard(4, (0,)))
    with pytest.raises(ValueError, match=r"adjacent"):
        BatchShard(4, (0, 2))


def test_multi_process_environment_with_another_mode_is_refused(monkeypatch):
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    for mode in ("none", "data_parallel"):
        with pytest.raises(DistributionError, match=r"mode is '.*'.* multi_process"):
            configure(DistributionParams(mode=mode))


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="refusal of other ones")
def test_other_backends_are_refused_naming_the_parameter_and_the_backend():
    with pytest.raises(DistributionError) as info:
        configure(DistributionParams(mode="data_parallel"))
    message = str(info.value)
    assert "model_training.fit.distribution.mode is 'data_parallel'" in message
    assert f"'{keras.backend.backend()}'" in message
    assert "KERAS_BACKEND=jax" in message
    assert distribution.current().distribution is None


def test_one_device_by_default():
    distribution.reset()
    assert configure(DistributionParams(mode="none")) == distribution.current()
    assert distribution.is_writer()
    assert distribution.batch_shard() == BatchShard()
    with distribution.scope(), distribution.outside():
        distribution.sync("nothing to wait for")
