"""Entry point of the ``plugdock`` command; every ``PlugdockError`` becomes one clear line and exit code 1."""

from __future__ import annotations

import sys
from typing import Any

import click

from plugdock import __version__
from plugdock.errors import PlugdockError


class PlugdockGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PlugdockError as exc:
            click.secho(f"error: {exc.message}", fg="red", err=True)
            problems = getattr(exc, "problems", None)
            for problem in problems or []:
                click.echo(str(problem), err=True)
            sys.exit(1)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            click.secho(f"error: {where}{exc.strerror or exc}", fg="red", err=True)
            sys.exit(1)


@click.group(cls=PlugdockGroup)
@click.version_option(__version__, prog_name="plugdock")
def cli() -> None:
    """plugdock: write, check, package, sign and host Dify plugins."""


def _register() -> None:
    from plugdock.cli import (
        authoring,
        daemon_commands,
        migrate_commands,
        packaging_commands,
        plugin_commands,
        publish_commands,
        typed_commands,
    )

    for module in (authoring, packaging_commands, plugin_commands, typed_commands, daemon_commands, migrate_commands,
                   publish_commands):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="plugdock")
