"""Entry point of the ``plugdock`` command; every ``PlugdockError`` becomes one clear line and exit code 1."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from plugdock import __version__
from plugdock.errors import PlugdockError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 120}


class PlugdockGroup(click.Group):
    """Errors as one line; ``-h``; NO_COLOR; command summaries whole (click cuts them at 45 characters)."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        if os.environ.get("NO_COLOR"):  # https://no-color.org: any non-empty value
            extra.setdefault("color", False)
        return super().make_context(info_name, args, parent, **extra)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        whole_summaries(self, ctx, formatter)

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
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


def whole_summaries(group: click.Group, ctx: click.Context, formatter: click.HelpFormatter) -> None:
    rows = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is not None and not command.hidden:
            rows.append((name, command.get_short_help_str(limit=200)))
    if rows:
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=PlugdockGroup, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="plugdock")
def cli() -> None:
    """plugdock: write, check, package, sign and host Dify plugins."""


def _register() -> None:
    from plugdock.cli import (
        authoring,
        daemon_commands,
        migrate_commands,
        ops_commands,
        packaging_commands,
        plugin_commands,
        publish_commands,
        typed_commands,
    )

    for module in (authoring, packaging_commands, plugin_commands, typed_commands, daemon_commands, migrate_commands,
                   publish_commands):
        for command in module.COMMANDS:
            cli.add_command(command)
    for command in ops_commands.COMMANDS:
        cli.add_command(command)
    from plugdock.cli.registry_commands import registry  # the self-hosted marketplace

    cli.add_command(registry)
    for command in cli.commands.values():
        consistent(command)


def consistent(command: click.Command) -> None:
    """One convention for every command, whoever wrote it: a plugin folder argument defaults to ``.`` (run
    from inside the plugin), and groups list their commands' summaries whole, as the top level does."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            consistent(sub)
        if not isinstance(command, PlugdockGroup):
            group = command

            def format_commands(ctx: click.Context, formatter: click.HelpFormatter) -> None:
                whole_summaries(group, ctx, formatter)

            command.format_commands = format_commands  # type: ignore[method-assign]
        return
    positional = [p for p in command.params if isinstance(p, click.Argument)]
    last = positional[-1] if positional else None  # an optional argument before a required one would take its word
    if (last is not None and last.required and last.nargs == 1 and isinstance(last.type, click.Path)
            and last.type.dir_okay):
        last.required = False
        last.default = "."


_register()


def main() -> None:
    cli(prog_name="plugdock")
