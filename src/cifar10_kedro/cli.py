"""Project commands of the ``kedro`` CLI (Kedro 1.x loads ``cli`` from
``<package>.cli``); each command lives in its own module."""

import click

from cifar10_kedro.launch import launch


@click.group(name="cifar10_kedro")
def cli() -> None:
    """Commands of the cifar10-kedro project."""


cli.add_command(launch)
