"""Concurrent requests predicted together, off the event loop, each given its own rows."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]


class MicroBatcher:
    """Queues the images of concurrent requests and predicts them in batches.

    One thread runs the model (it uses every core by itself); while it works, new
    requests queue up and the next batch takes all of them, up to ``max_images``
    (a single larger request is never split). No request waits for a timer: a lone
    request is predicted at once. Each request gets back exactly its own rows.
    """

    def __init__(self, predict: Predict, max_images: int) -> None:
        self._predict = predict
        self._max_images = max_images
        self._queue: asyncio.Queue[tuple[np.ndarray, asyncio.Future]] | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self.batches = 0  # counters, for the logs and the tests
        self.images = 0

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def predict(self, images: np.ndarray) -> np.ndarray:
        """Return the probabilities of ``images`` (N, 32, 32, 3) uint8."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not awaited")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((images, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        carried: tuple[np.ndarray, asyncio.Future] | None = None
        while True:
            first = carried or await self._queue.get()
            carried = None
            batch = [first]
            count = len(first[0])
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if count + len(item[0]) > self._max_images:
                    carried = item  # opens the next batch
                    break
                batch.append(item)
                count += len(item[0])
            batch = [(images, f) for images, f in batch if not f.cancelled()]
            if not batch:
                continue
            count = sum(len(images) for images, _ in batch)
            try:
                probabilities = await loop.run_in_executor(
                    self._executor,
                    self._predict,
                    np.concatenate([images for images, _ in batch]),
                )
            except Exception as exc:  # every waiting request learns of it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            self.images += count
            start = 0
            for images, future in batch:
                end = start + len(images)
                if not future.done():  # a client that left has a cancelled future
                    future.set_result(probabilities[start:end])
                start = end
