"""Project commands, added to ``kedro``'s: ``kedro serve`` runs the HTTP service,
``kedro launch`` starts the processes of one multi-process training job.

Kedro loads ``cli`` from this module for the project's commands, and takes ``run``
from it for ``python -m cifar10_kedro``: that stays Kedro's own ``run``.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import click
from kedro.framework.cli.project import run  # noqa: F401 - see the module docstring
from kedro.framework.cli.utils import CONTEXT_SETTINGS, env_option

from cifar10_kedro.launch import launch
from cifar10_kedro.tracking.compare import compare_runs


def is_loopback(host: str) -> bool:
    """True when ``host`` is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


@click.group(context_settings=CONTEXT_SETTINGS, name="cifar10_kedro")
def cli() -> None:
    """Commands of the cifar10-kedro project."""


@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--host",
    default=None,
    help="Address to listen on, instead of serving.host. Anything but a loopback "
    "address needs an API token (or --insecure).",
)
@click.option(
    "--port", "-p", default=None, type=int, help="Port, instead of serving.port."
)
@env_option(envvar="KEDRO_ENV", help="Environment whose catalog loads the model.")
@click.option(
    "--load-version",
    "model_version",
    default=None,
    help="The trained_model version to serve (a folder name under its path); the "
    "newest by default.",
)
@click.option(
    "--engine",
    default=None,
    type=click.Choice(["keras", "onnx_int8"]),
    help="What predicts, instead of serving.engine: the Keras model, or its int8 "
    "ONNX export of the same version (kedro run --pipeline export).",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow a non-loopback --host without an API token.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@click.pass_obj
def serve(  # noqa: PLR0913
    metadata: object,
    host: str | None,
    port: int | None,
    env: str | None,
    model_version: str | None,
    engine: str | None,
    insecure: bool,
    log_level: str,
) -> None:
    """Serve the trained model over HTTP (POST /v1/predict; docs at /docs).

    Unlike Kedro's `kedro server start`, which runs pipelines on request, this loads
    the model once and answers predictions. The model is the one the catalog of
    --env loads: the newest trained_model, or --load-version. Where it listens and
    what it accepts are the serving parameters of --env.
    """
    import uvicorn  # noqa: PLC0415 - imported when serving only

    from cifar10_kedro.serving.app import create_app  # noqa: PLC0415
    from cifar10_kedro.serving.loading import (  # noqa: PLC0415
        load_service_config,
        load_settings,
    )

    project_path = Path(getattr(metadata, "project_path", None) or Path.cwd())
    _, serving = load_settings(project_path, env)
    host = serving.host if host is None else host
    port = serving.port if port is None else port
    token = os.environ.get(serving.token_env_var) or None
    if not is_loopback(host) and not token and not insecure:
        raise click.UsageError(
            f"Refusing to listen on {host}, which other machines can reach, without "
            f"an API token. Set {serving.token_env_var} (every request then needs "
            f"'Authorization: Bearer <token>'), listen on a loopback address such as "
            "127.0.0.1, or pass "
            "--insecure to serve without a token."
        )
    config = load_service_config(project_path, env, model_version, engine)
    if token:
        click.echo(f"Requests need the API token in {serving.token_env_var}.")
    elif not is_loopback(host):
        click.echo(f"WARNING: serving on {host} without an API token (--insecure).")
    uvicorn.run(create_app(config), host=host, port=port, log_level=log_level)


cli.add_command(launch)
# `kedro compare-runs`: the runs recorded in MLflow side by side (docs/tracking.md).
cli.add_command(compare_runs)
