"""``kedro launch``: one data-parallel ``kedro run`` as N processes on this machine.

It starts N ``kedro run`` processes with the variables that
``keras.distribution.initialize()`` reads (the coordinator on a free loopback port,
the number of processes, each one's id) and
``model_training.fit.distribution.mode=multi_process``, prefixes each line they
print with its process id, and waits. When one fails, it stops the others (SIGTERM,
then SIGKILL after ``--grace`` seconds; each by its process id), says which failed
and how, and exits non-zero; running the same command again resumes the training
from its last completed epoch.

On a cluster, start the processes with SLURM's ``srun`` or Open MPI's ``mpirun``, or
set the same variables on each host (docs/distributed.md).
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO

import click

MODE = "model_training.fit.distribution.mode"
HOST = "127.0.0.1"


def process_index_from_environment(env: dict[str, str] | None = None) -> int:
    """Return this process's id in its multi-process job as the environment that
    started it says (0 outside one): ``kedro launch``'s (Keras') variable, else
    SLURM's inside an ``srun`` step, else Open MPI's, as ``jax.distributed`` reads
    them. Known before any session starts (``settings.py`` needs it)."""
    env = os.environ if env is None else env
    for name, inside in (
        ("KERAS_DISTRIBUTION_PROCESS_ID", "KERAS_DISTRIBUTION_PROCESS_ID"),
        ("SLURM_PROCID", "SLURM_STEP_NODELIST"),
        ("OMPI_COMM_WORLD_RANK", "OMPI_MCA_orte_hnp_uri"),
    ):
        if inside in env and env.get(name, "").isdigit():
            return int(env[name])
    return 0


def free_port(host: str = HOST) -> int:
    """Return a TCP port that is free on ``host`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def with_multi_process(run_args: Sequence[str]) -> list[str]:
    """Return ``kedro run``'s arguments with ``MODE=multi_process`` added to (or as)
    its ``--params``; a mode the user gives is kept."""
    args = list(run_args)
    for i, arg in enumerate(args):
        if arg == "--params" and i + 1 < len(args):
            args[i + 1] = _add_mode(args[i + 1])
            return args
        if arg.startswith("--params="):
            args[i] = "--params=" + _add_mode(arg.removeprefix("--params="))
            return args
    return [*args, "--params", f"{MODE}=multi_process"]


def _add_mode(params: str) -> str:
    if MODE in params:
        return params
    return (
        f"{params},{MODE}=multi_process" if params.strip() else f"{MODE}=multi_process"
    )


def process_environment(
    index: int, processes: int, coordinator: str, base: dict[str, str] | None = None
) -> dict[str, str]:
    """Return the environment of process ``index`` of ``processes``."""
    env = dict(os.environ if base is None else base)
    env.setdefault("KERAS_BACKEND", "jax")  # Keras' distribution API runs on JAX
    env.setdefault("PYTHONUNBUFFERED", "1")  # lines as they come
    # Rich wraps log lines at COLUMNS (80 without a terminal); leave room for "[pN] ".
    width = shutil.get_terminal_size(fallback=(126, 24)).columns - 6
    env.setdefault("COLUMNS", str(max(80, width)))
    env |= {
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": coordinator,
        "KERAS_DISTRIBUTION_NUM_PROCESSES": str(processes),
        "KERAS_DISTRIBUTION_PROCESS_ID": str(index),
    }
    return env


def describe_exit(code: int) -> str:
    """Return how a process ended, from its return code."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


class Launcher:
    """N processes of one command, their output prefixed, stopped together."""

    def __init__(
        self,
        commands: list[list[str]],
        environments: list[dict[str, str]],
        *,
        grace: float = 10.0,
        out: IO[str] | None = None,
    ) -> None:
        self.commands, self.environments = commands, environments
        self.grace = grace
        self.out = out or sys.stdout
        self.processes: list[subprocess.Popen] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        # (process id, return code) in the order the processes end.
        self._ended: queue.Queue[tuple[int, int]] = queue.Queue()

    def say(self, message: str) -> None:
        with self._lock:
            print(f"[launch] {message}", file=self.out, flush=True)

    def _relay(self, index: int, stream: IO[str]) -> None:
        for line in stream:
            with self._lock:
                self.out.write(f"[p{index}] {line}")
                self.out.flush()
        stream.close()

    def _await(self, index: int, process: subprocess.Popen) -> None:
        self._ended.put((index, process.wait()))

    def start(self) -> None:
        for index, (command, env) in enumerate(
            zip(self.commands, self.environments, strict=True)
        ):
            process = subprocess.Popen(
                command,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
            self.processes.append(process)
            self.say(f"process {index} started (pid {process.pid})")
            for target, args in (
                (self._relay, (index, process.stdout)),
                (self._await, (index, process)),
            ):
                thread = threading.Thread(target=target, args=args, daemon=True)
                thread.start()
                self._threads.append(thread)

    def wait(self) -> int:
        """Wait for every process; return 0, or the exit status of the first that
        failed (128 + the signal's number for a killed one), once all are stopped."""
        for _ in self.processes:
            index, code = self._ended.get()
            if code != 0:
                return self._fail(index, code)
        self._drain()
        self.say(f"all {len(self.processes)} processes finished.")
        return 0

    def _fail(self, index: int, code: int) -> int:
        pid = self.processes[index].pid
        self.say(
            f"process {index} (pid {pid}) failed: it {describe_exit(code)}. "
            "Stopping the others."
        )
        self.stop()
        self._drain()
        self.say(
            f"FAILED: process {index} of {len(self.processes)} {describe_exit(code)}; "
            "run the same command again to resume from the last completed epoch."
        )
        return code if code > 0 else 128 - code

    def stop(self) -> None:
        """SIGTERM every running process by its pid; SIGKILL those left after the
        grace period."""
        running = []
        for index, process in enumerate(self.processes):
            if process.poll() is None:
                self.say(f"stopping process {index} (pid {process.pid})")
                process.terminate()
                running.append(process)
            elif process.returncode != 0:
                self.say(
                    f"process {index} (pid {process.pid}) had already ended: it "
                    f"{describe_exit(process.returncode)}"
                )
        deadline = time.monotonic() + self.grace
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _drain(self) -> None:
        for thread in self._threads:
            thread.join(timeout=5)


def run_processes(
    processes: int,
    run_args: Sequence[str],
    *,
    port: int = 0,
    grace: float = 10.0,
    out: IO[str] | None = None,
) -> int:
    """Start ``processes`` ``kedro run`` processes of one multi-process job on this
    machine and wait for them; return the exit status (0 when all succeed)."""
    coordinator = f"{HOST}:{port or free_port()}"
    args = with_multi_process(run_args)
    command = [sys.executable, "-m", "kedro", "run", *args]
    launcher = Launcher(
        [command] * processes,
        [process_environment(i, processes, coordinator) for i in range(processes)],
        grace=grace,
        out=out,
    )
    launcher.say(
        f"{processes} processes of `kedro run {' '.join(args)}`, coordinator "
        f"{coordinator}; process 0 writes the outputs."
    )

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        launcher.start()
        return launcher.wait()
    except KeyboardInterrupt:
        launcher.say("interrupted: stopping every process.")
        launcher.stop()
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command(
    name="launch",
    context_settings={"ignore_unknown_options": True},
    epilog="Example: kedro launch --processes 2 -- --env smoke",
)
@click.option(
    "--processes",
    "-n",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="How many processes to start.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    help="The coordinator's port on 127.0.0.1 (default: a free one).",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds between SIGTERM and SIGKILL when stopping the processes.",
)
@click.argument("run_args", nargs=-1, type=click.UNPROCESSED)
def launch(processes: int, port: int, grace: float, run_args: tuple[str, ...]) -> None:
    """Run `kedro run RUN_ARGS` as N data-parallel processes on this machine.

    Each process gets KERAS_DISTRIBUTION_JOB_ADDRESSES (127.0.0.1 and a free port),
    KERAS_DISTRIBUTION_NUM_PROCESSES and KERAS_DISTRIBUTION_PROCESS_ID, KERAS_BACKEND=jax
    unless set, and model_training.fit.distribution.mode=multi_process. Their output
    is prefixed with [pN]. If one fails, the others are stopped and the command
    exits non-zero; run it again to resume.
    """
    sys.exit(run_processes(processes, run_args, port=port, grace=grace))
