"""``plugdock migrate-from-official``: carry an official dify-plugin-daemon's state over to a plugdock home."""

from __future__ import annotations

from pathlib import Path

import click

from plugdock.cli.secrets_input import warn_password_in_url
from plugdock.errors import PlugdockError


@click.command("migrate-from-official")
@click.option("--db", "db_url", envvar="PLUGDOCK_OFFICIAL_DB_URL", required=True,
              help="The official daemon's database URL, e.g. postgresql://user@host/dify_plugin "
                   "(or PLUGDOCK_OFFICIAL_DB_URL, which keeps a password out of the process list). Only read.")
@click.option("--storage", "storage_root", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The official daemon's storage folder (its PLUGIN_STORAGE_LOCAL_ROOT). Only read.")
@click.option("--installed-path", envvar="PLUGIN_INSTALLED_PATH", default="plugin", show_default=True,
              help="Installed packages under --storage (the official PLUGIN_INSTALLED_PATH).")
@click.option("--package-cache-path", envvar="PLUGIN_PACKAGE_CACHE_PATH", default="plugin_packages",
              show_default=True, help="Uploaded packages under --storage (the official PLUGIN_PACKAGE_CACHE_PATH).")
@click.option("--persistence-path", envvar="PERSISTENCE_STORAGE_PATH", default="persistence", show_default=True,
              help="Plugin key-value storage under --storage (the official PERSISTENCE_STORAGE_PATH).")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path),
              help="The plugdock home to import into (PLUGDOCK_HOME); its database is DB_URL/PLUGDOCK_DB_URL or "
                   "db_url in --config, else SQLite in the home.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="plugdock's TOML or JSON settings file, as for plugdock serve.")
@click.option("--dry-run", is_flag=True, help="Say what would be imported; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def migrate_from_official(db_url: str, storage_root: Path, installed_path: str, package_cache_path: str,
                          persistence_path: str, home: Path | None, config_file: Path | None, dry_run: bool,
                          as_json: bool) -> None:
    """Import an official daemon's installations, packages, endpoints and plugin storage into plugdock.

    Stop both daemons first. Running it again changes nothing and says so; nothing plugdock holds is ever
    overwritten. Exits 1 when an item could not be imported (each is listed with why)."""
    import asyncio

    from plugdock.cli.daemon_commands import _require_daemon_extra

    if click.get_current_context().get_parameter_source("db_url") == click.core.ParameterSource.COMMANDLINE:
        warn_password_in_url("--db", db_url, "set PLUGDOCK_OFFICIAL_DB_URL")
    _require_daemon_extra()
    from plugdock.daemon.migration.importer import migrate
    from plugdock.daemon.migration.official import Layout
    from plugdock.daemon.settings import load_settings

    for option, value in (("--installed-path", installed_path), ("--package-cache-path", package_cache_path),
                          ("--persistence-path", persistence_path)):
        if not value or Path(value).is_absolute() or ".." in Path(value).parts:
            raise PlugdockError(f"{option} {value!r} must be a folder inside --storage (relative, without '..')")
    # a dry run writes nothing: not even the server key load_settings generates for a home that has none
    settings = load_settings(config_file, {"home": home, "server_key": "unused" if dry_run else None})
    layout = Layout(storage_root, installed_path, package_cache_path, persistence_path)
    report = asyncio.run(migrate(settings, db_url, layout, dry_run, lambda line: click.echo(line, err=True)))
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        click.echo(f"{'dry run: ' if dry_run else ''}{storage_root} -> plugdock home {settings.home} "
                   f"(database {settings.database_shown})")
        for line in report.lines():
            click.echo(line)
    failures = report.failures
    if failures:
        raise PlugdockError(f"{len(failures)} item(s) could not be imported (listed above with why)")


COMMANDS = [migrate_from_official]
