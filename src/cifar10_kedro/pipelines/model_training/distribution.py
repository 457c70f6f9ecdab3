"""Data-parallel training over several devices and processes (Keras 3 on JAX).

``model_training.fit.distribution.mode`` chooses (``params.DistributionParams``):

* ``none``: the backend's default device, as always;
* ``data_parallel``: a ``keras.distribution.DataParallel`` over every device this
  process sees (the GPUs of one machine);
* ``multi_process``: the same over every device of every process of a job. Each
  process joins the job with ``keras.distribution.initialize()``, which wraps
  ``jax.distributed.initialize``: the coordinator's address, the number of
  processes and this process's id come from ``KERAS_DISTRIBUTION_JOB_ADDRESSES``,
  ``KERAS_DISTRIBUTION_NUM_PROCESSES`` and ``KERAS_DISTRIBUTION_PROCESS_ID`` (set by
  ``kedro launch``), else JAX detects SLURM or Open MPI.

``configure`` (called by ``hooks.DistributionHooks`` before a run) sets this up once
per process; the training nodes then create and train the model inside ``scope()``,
and load the trained model outside it, so that what they return, and everything
after them (reports, the exported model), is an ordinary one-device model.

Every process computes every global batch's order and augmentation itself (a pure
function of seed, epoch and step) and feeds only its rows (``batch_shard``); JAX
assembles the global batch from the processes' parts
(``jax.make_array_from_process_local_data``, in Keras' JAX trainer). Process 0 alone
writes (``is_writer``); ``sync`` and ``agree`` are JAX's own collectives.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .batches import BatchShard
from .params import DistributionParams

logger = logging.getLogger(__name__)

PARAMETER = "model_training.fit.distribution.mode"
# What keras.distribution.initialize() reads (kedro launch sets them).
ENVIRONMENT = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)


class DistributionError(RuntimeError):
    """The distribution asked for cannot be set up here."""


@dataclass(frozen=True)
class Topology:
    """Where this process trains."""

    mode: str = "none"
    # keras.distribution.DataParallel, or None for one device.
    distribution: Any = None
    devices: int = 1
    process_index: int = 0
    process_count: int = 1
    # Positions, in the device mesh, of the devices of this process.
    local_positions: tuple[int, ...] = (0,)


_ONE_DEVICE = Topology()
_current = _ONE_DEVICE


def current() -> Topology:
    """Return the topology ``configure`` set up (one device before it)."""
    return _current


def reset() -> None:
    """Forget the distribution (the next run of this process configures its own)."""
    global _current  # noqa: PLW0603 - one topology per process, as Keras' own
    _current = _ONE_DEVICE


def is_writer() -> bool:
    """Return whether this process writes outputs and checkpoints (process 0)."""
    return _current.process_index == 0


def batch_shard() -> BatchShard:
    """Return which rows of every global batch this process feeds."""
    return BatchShard(devices=_current.devices, positions=_current.local_positions)


@contextlib.contextmanager
def scope() -> Iterator[None]:
    """Create or train models inside this: under the distribution, if any."""
    if _current.distribution is None:
        yield
    else:
        with _current.distribution.scope():
            yield


@contextlib.contextmanager
def outside() -> Iterator[None]:
    """Run what one process does alone (saving a checkpoint) outside the distribution.

    Under a multi-process distribution every new or assigned Keras variable is a
    collective ``device_put`` that all processes must join, and Keras' saving
    creates some (a reference optimizer); outside, they are local.
    """
    if _current.distribution is None:
        yield
        return
    import keras  # noqa: PLC0415

    active = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(active)


def sync(name: str) -> None:
    """Wait until every process of the job reaches the point called ``name``."""
    if _current.process_count > 1:
        from jax.experimental import multihost_utils  # noqa: PLC0415

        multihost_utils.sync_global_devices(name)


def agree(values: np.ndarray) -> np.ndarray:
    """Return every process's ``values`` (one row a process, by process id)."""
    values = np.asarray(values)
    if _current.process_count == 1:
        return values[None]
    from jax.experimental import multihost_utils  # noqa: PLC0415

    return np.asarray(multihost_utils.process_allgather(values))


def declared_processes() -> int:
    """Return the number of processes ``KERAS_DISTRIBUTION_NUM_PROCESSES`` declares."""
    value = os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES", "1")
    try:
        return int(value)
    except ValueError:
        raise DistributionError(
            f"KERAS_DISTRIBUTION_NUM_PROCESSES is {value!r}; expected a whole number "
            "of processes."
        ) from None


def configure(params: DistributionParams) -> Topology:
    """Set up the distribution ``params`` asks for; return this process's topology.

    Raises ``DistributionError`` when the backend is not JAX, when this process
    cannot join its job, or when the environment declares a multi-process job that
    the parameters do not expect (each process would train alone and write the same
    outputs).
    """
    global _current  # noqa: PLW0603
    mode = params.mode
    declared = declared_processes()
    if mode != "multi_process" and declared > 1:
        raise DistributionError(
            f"This process was started as one of {declared} "
            "(KERAS_DISTRIBUTION_NUM_PROCESSES), but "
            f"{PARAMETER} is '{mode}': each process would train alone and write the "
            f"same outputs. Set {PARAMETER} to multi_process (kedro launch does), or "
            "start one process."
        )
    if mode == "none":
        _current = _ONE_DEVICE
        return _current
    import keras  # noqa: PLC0415

    backend = keras.backend.backend()
    if backend != "jax":
        raise DistributionError(
            f"{PARAMETER} is '{mode}', which needs Keras' JAX backend (Keras' "
            "distribution API trains data-parallel on JAX; TensorFlow's multi-worker "
            f"strategies do not support Keras 3), but this run uses '{backend}'. "
            f"Run with KERAS_BACKEND=jax, or set {PARAMETER} to none."
        )
    import jax  # noqa: PLC0415

    if mode == "multi_process" and not jax.distributed.is_initialized():
        _join_the_job(keras, jax)
    devices = keras.distribution.list_devices()
    distribution = keras.distribution.DataParallel(
        devices=devices,
        # Each process feeds its own rows of every batch (batch_shard), as numpy.
        auto_shard_dataset=False,
    )
    mesh = distribution.device_mesh.backend_mesh.devices.flatten()
    local = tuple(
        i for i, d in enumerate(mesh) if d.process_index == jax.process_index()
    )
    _current = Topology(
        mode=mode,
        distribution=distribution,
        devices=len(mesh),
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        local_positions=local,
    )
    batch_shard()  # checks that this process's devices are adjacent in the mesh
    logger.info(
        "Data-parallel training over %d %s device(s) in %d process(es); this is "
        "process %d%s.",
        len(mesh),
        mesh[0].platform,
        _current.process_count,
        _current.process_index,
        " (it writes the outputs)" if is_writer() else " (its outputs stay in memory)",
    )
    return _current


def _join_the_job(keras: Any, jax: Any) -> None:
    """``keras.distribution.initialize()``, with a message that says what to set."""
    # Cross-process collectives on CPUs (the default from JAX 0.5 on; needed before).
    if "JAX_CPU_COLLECTIVES_IMPLEMENTATION" not in os.environ:
        with contextlib.suppress(AttributeError, ValueError):
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
    given = {name: os.environ[name] for name in ENVIRONMENT if name in os.environ}
    try:
        keras.distribution.initialize()
    except (ValueError, RuntimeError) as exc:
        raise DistributionError(
            f"{PARAMETER} is 'multi_process' but this process could not join its job "
            f"({type(exc).__name__}: {exc}). Start the processes with `kedro launch "
            "--processes N`, SLURM's srun or Open MPI's mpirun, or set "
            + ", ".join(ENVIRONMENT)
            + f" (found: {given or 'none of them'})."
        ) from exc
    # Leave the job while the interpreter is whole: JAX registers no exit handler, and
    # the coordinator torn down with the modules can abort the exit of process 0
    # (gRPC's "Check failed: queue.Pop() == nullptr") after the work is done.
    atexit.register(jax.distributed.shutdown)
