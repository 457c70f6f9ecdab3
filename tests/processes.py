"""The real processes tests start: a project command's environment, a command run to
its end, and a server started in its own process group and stopped, whole, by its
process id."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import pytest

# A user's shell for a project command, as the tests read its output.
PROJECT_COMMAND: dict[str, str | None] = {
    "KEDRO_ENV": None,  # each command names its --env
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "DO_NOT_TRACK": "1",
    "KEDRO_DISABLE_TELEMETRY": "1",
    "COLUMNS": "250",  # rich wraps at 80 columns off a terminal: checked lines split
}


def environment(**changes: str | None) -> dict[str, str]:
    """This process's environment as a project command gets it (no KEDRO_ENV,
    telemetry off, TensorFlow's C++ log quiet, wide log lines), with ``changes`` on
    top; a change to None removes the variable."""
    env = dict(os.environ)
    for name, value in {**PROJECT_COMMAND, **changes}.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


class Completed(subprocess.CompletedProcess):
    """A command run to its end, its output captured as text."""

    @property
    def output(self) -> str:
        """Its standard output, then its standard error."""
        return self.stdout + self.stderr


def run(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None,
) -> Completed:
    """Run ``args`` to its end (``env`` None: this process's environment); its exit
    code is the caller's to check."""
    done = subprocess.run(
        list(args),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Completed(done.args, done.returncode, done.stdout, done.stderr)


def kedro_args(*args: str) -> list[str]:
    """`kedro ARGS` with this interpreter, whatever is on PATH."""
    return [sys.executable, "-m", "kedro", *args]


def kedro(
    project: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float,
) -> Completed:
    """`kedro ARGS` run to its end in ``project`` (``env`` None: environment())."""
    return run(
        kedro_args(*args),
        cwd=project,
        env=environment() if env is None else env,
        timeout=timeout,
    )


def start(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> subprocess.Popen:
    """Start ``args`` in a process group of its own, for stop() to stop whole; its
    output (standard error included) goes to the file ``log`` or, when None, to a
    text pipe the caller reads (``process.stdout``)."""
    if log is None:
        return subprocess.Popen(
            list(args),
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    with log.open("w") as out:
        return subprocess.Popen(
            list(args),
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen, grace: float = 15) -> None:
    """Stop ``process`` (from start()) and everything it started, its process group,
    by its id: SIGTERM, then SIGKILL if it has not ended within ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)


def free_port(highest: int = 65535) -> int:
    """A TCP port on the loopback interface, at most ``highest``, that is free now
    (nothing listens on it: a connection to it is refused)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port <= highest:
            return port
    pytest.fail(f"no free port at most {highest}")


def wait_for_url(
    url: str,
    process: subprocess.Popen,
    log: Path,
    timeout: float,
    headers: dict[str, str] | None = None,
) -> None:
    """Wait until ``url`` answers 200, failing early, with the end of ``log``, if
    ``process`` exits."""
    request = urllib.request.Request(url, headers=headers or {})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"{' '.join(map(str, process.args))} exited with "
                f"{process.returncode}:\n{log.read_text()[-4000:]}"
            )
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer within {timeout} s:\n{log.read_text()[-4000:]}")
