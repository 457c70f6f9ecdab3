"""Start the real `kedro serve` as a subprocess on a free loopback port; stop it by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KEDRO_ENV", "CIFAR10_API_TOKEN")
    }
    env.update(TF_CPP_MIN_LOG_LEVEL="2", DO_NOT_TRACK="1", KEDRO_DISABLE_TELEMETRY="1")
    env.update(extra)
    return env


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "kedro", "serve", "--env", "smoke", *args]


def stop(process: subprocess.Popen) -> None:
    """SIGTERM (uvicorn shuts down gracefully), then SIGKILL; by its pid."""
    for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)


@contextlib.contextmanager
def running_server(
    project: Path, log: Path, *args: str, token: str | None = None, timeout: float = 180
) -> Iterator[str]:
    """Yield the base URL of `kedro serve` started in ``project`` with ``args``."""
    port = free_port()
    extra = {"CIFAR10_API_TOKEN": token} if token else {}
    with log.open("w") as out:
        process = subprocess.Popen(
            serve_command("--port", str(port), *args),
            cwd=project,
            env=server_env(**extra),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"kedro serve exited with {process.returncode}:\n{log.read_text()[-4000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if (
                    httpx.get(
                        f"{url}/v1/health", headers=headers, timeout=5
                    ).status_code
                    == 200
                ):
                    break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"kedro serve did not answer in {timeout} s:\n{log.read_text()[-4000:]}"
                )
            time.sleep(0.5)
        yield url
    finally:
        stop(process)
