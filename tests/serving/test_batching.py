"""MicroBatcher: concurrent requests predicted together, each given its own rows."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from cifar10_kedro.serving.batching import MicroBatcher


class SlowModel:
    """Returns each image's first pixel as its 'probabilities'; records batch sizes."""

    def __init__(self, delay: float = 0.02) -> None:
        self.delay, self.sizes, self.threads = delay, [], set()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.sizes.append(len(images))
        self.threads.add(threading.current_thread().name)
        threading.Event().wait(self.delay)
        return images[:, 0, 0, :].astype(np.float32)


def requests(count: int, size: int = 1) -> list[np.ndarray]:
    return [np.full((size, 32, 32, 3), i % 256, dtype=np.uint8) for i in range(count)]


async def serve(batcher: MicroBatcher, batches: list[np.ndarray]) -> list[np.ndarray]:
    await batcher.start()
    try:
        return await asyncio.gather(*(batcher.predict(b) for b in batches))
    finally:
        await batcher.stop()


def test_concurrent_requests_are_batched_and_get_their_own_rows():
    model = SlowModel()
    batcher = MicroBatcher(model, max_images=64)
    sent = requests(100, size=2)
    answers = asyncio.run(serve(batcher, sent))
    for images, answer in zip(sent, answers, strict=True):
        np.testing.assert_array_equal(answer, images[:, 0, 0, :])
    # Fewer model calls than requests, none above the cap, on one thread.
    assert len(model.sizes) < len(sent) and max(model.sizes) <= 64
    assert sum(model.sizes) == 200 and batcher.images == 200
    assert len(model.threads) == 1 and threading.main_thread().name not in model.threads


def test_a_request_larger_than_the_cap_is_predicted_whole():
    model = SlowModel(delay=0)
    answers = asyncio.run(serve(MicroBatcher(model, max_images=4), requests(1, 10)))
    assert answers[0].shape == (10, 3) and model.sizes == [10]


def test_a_model_error_reaches_every_waiting_request_and_the_next_ones_work():
    calls = []

    def flaky(images: np.ndarray) -> np.ndarray:
        calls.append(len(images))
        if len(calls) == 1:
            raise RuntimeError("model failed")
        return images[:, 0, 0, :].astype(np.float32)

    async def scenario():
        batcher = MicroBatcher(flaky, max_images=8)
        await batcher.start()
        try:
            with pytest.raises(RuntimeError, match="model failed"):
                await batcher.predict(requests(1)[0])
            return await batcher.predict(requests(2)[1])
        finally:
            await batcher.stop()

    np.testing.assert_array_equal(asyncio.run(scenario()), [[1, 1, 1]])


def test_a_request_whose_client_left_is_skipped():
    model = SlowModel(delay=0.05)

    async def scenario():
        batcher = MicroBatcher(model, max_images=8)
        await batcher.start()
        try:
            first = asyncio.create_task(batcher.predict(requests(1)[0]))
            await asyncio.sleep(0.01)  # the first batch is running
            gone = asyncio.create_task(batcher.predict(requests(2, 3)[1]))
            kept = asyncio.create_task(batcher.predict(requests(3)[2]))
            await asyncio.sleep(0)
            gone.cancel()
            return await first, await kept
        finally:
            await batcher.stop()

    first, kept = asyncio.run(scenario())
    np.testing.assert_array_equal(kept, [[2, 2, 2]])
    assert model.sizes == [1, 1]
