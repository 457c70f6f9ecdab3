"""Start the real `kedro serve` as a subprocess on a free loopback port; stop it by pid."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.processes import (
    Completed,
    environment,
    free_port,
    kedro,
    kedro_args,
    start,
    stop,
    wait_for_url,
)

SERVE = ("serve", "--env", "smoke")


def serve_once(project: Path, *args: str, timeout: float) -> Completed:
    """`kedro serve ARGS` in ``project``, with no API token, run to its end (a refusal)."""
    return kedro(
        project, *SERVE, *args, env=environment(CIFAR10_API_TOKEN=None), timeout=timeout
    )


@contextlib.contextmanager
def running_server(
    project: Path, log: Path, *args: str, token: str | None = None, timeout: float = 180
) -> Iterator[str]:
    """Yield the base URL of `kedro serve` started in ``project`` with ``args``."""
    port = free_port()
    process = start(
        kedro_args(*SERVE, "--port", str(port), *args),
        cwd=project,
        env=environment(CIFAR10_API_TOKEN=token or None),
        log=log,
    )
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        wait_for_url(f"{url}/v1/health", process, log, timeout, headers=headers)
        yield url
    finally:
        stop(process, grace=20)  # SIGTERM: uvicorn shuts down gracefully
