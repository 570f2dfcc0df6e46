"""Daemon commands: ``serve`` (run the daemon), ``install`` (upload + install through its API), ``logs``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from plugdock.cli.daemon_client import DaemonClient, connect
from plugdock.cli.publish_commands import PackageSource
from plugdock.cli.secrets_input import warn_password_in_url
from plugdock.errors import PlugdockError


def _require_daemon_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import sqlalchemy  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise PlugdockError(f"the daemon needs extra packages ({exc.name} is missing): "
                            "pip install 'plugdock[daemon]'") from exc


@click.command()
@click.option("--host", help="Address to listen on (SERVER_HOST).")
@click.option("--port", type=int, help="Port (SERVER_PORT, default 5002).")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), help="Data directory (PLUGDOCK_HOME).")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML or JSON settings file.")
@click.option("--db", "db_url", help="Database URL; SQLite under the home by default. A URL with a password is "
                                     "visible to every local process here: set DB_URL/PLUGDOCK_DB_URL or db_url in "
                                     "the --config file instead.")
@click.option("--print-config", is_flag=True, help="Show every setting, its value and where it came from; exit.")
@click.option("--preinstall", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Plugin folder, folder of plugin folders, or .difypkg to install for tenant 'default' at start.")
@click.option("--sandbox", type=click.Choice(["none", "process"]),
              help="Plugin containment (PLUGDOCK_SANDBOX, default process): limits, no_new_privs and, as root, a "
                   "uid per plugin.")
@click.option("--allow-unsigned", is_flag=True, default=None,
              help="Development: install packages that are not signed, or not by a trusted key, marked unverified "
                   "(FORCE_VERIFYING_SIGNATURE=false).")
@click.option("--debug-port", type=click.IntRange(0, 65535), metavar="PORT",
              help="Port plugins connect to for remote debugging (PLUGIN_REMOTE_INSTALLING_PORT, default 5003; "
                   "0 picks a free one).")
@click.option("--no-debug", is_flag=True, default=None,
              help="Run without remote debugging: no debug port is bound (PLUGIN_REMOTE_INSTALLING_ENABLED=false).")
def serve(host: str | None, port: int | None, home: Path | None, config_file: Path | None, db_url: str | None,
          print_config: bool, preinstall: tuple[Path, ...], sandbox: str | None, allow_unsigned: bool | None,
          debug_port: int | None, no_debug: bool | None) -> None:
    """Run the plugin daemon (the official daemon's HTTP API)."""
    from plugdock.daemon.settings import load_settings

    if no_debug and debug_port is not None:
        raise click.UsageError("give --debug-port or --no-debug, not both")
    warn_password_in_url("--db", db_url, "set DB_URL or PLUGDOCK_DB_URL, or db_url in the --config file,")

    settings = load_settings(config_file, {"host": host, "port": port, "home": home, "db_url": db_url,
                                           "preinstall": [str(p) for p in preinstall] or None, "sandbox": sandbox,
                                           "force_verifying_signature": False if allow_unsigned else None,
                                           "remote_installing_port": debug_port,
                                           "remote_installing_enabled": False if no_debug else None})
    if print_config:
        width = max(len(name) for name, _, _ in settings.describe())
        for name, value, source in settings.describe():
            click.echo(f"{name:<{width}}  {value}  ({source})")
        return
    _require_daemon_extra()
    import uvicorn

    from plugdock.daemon.http.app import create_app
    from plugdock.daemon.http.connections import uvicorn_options
    from plugdock.daemon.invocation.debugging import bind_debug_port, listening_socket

    # Before anything starts, a taken port is one line: uvicorn binds only after the whole start-up, and a
    # failed lifespan is a traceback. The API's port is probed (uvicorn binds it itself); the debug port kept.
    listening_socket(settings.host, settings.port, "the HTTP API", "set SERVER_PORT (or --port) to a free port").close()
    if settings.remote_installing_enabled:
        settings.remote_installing_socket = bind_debug_port(settings)
    connection_options, limits = uvicorn_options(settings)
    base = f"http://{settings.host}:{settings.port}"
    click.echo(f"plugdock daemon on {base}  (home {settings.home}, database {settings.database_shown})", err=True)
    # The key itself never goes to a log: say where it is.
    source = settings.sources.get("server_key", "")
    key_file = settings.home / "server.key"
    key_shell = f"$(cat {key_file})" if "generated" in source else "$SERVER_KEY"
    click.echo(f"API key: {'in ' + str(key_file) if 'generated' in source else 'from ' + source}", err=True)
    click.echo(f"sandbox: {settings.sandbox}", err=True)
    for line in settings.signature_policy().describe():
        click.echo(line, err=True)
    click.echo(limits.describe(), err=True)
    if settings.preinstall:
        click.echo("try it, once the examples are installed:", err=True)
        click.echo(f"  curl -N -X POST {base}/plugin/default/dispatch/tool/invoke -H \"X-Api-Key: "
                   f"{key_shell}\" -H 'X-Plugin-ID: plugdock/echo_tool' -H 'Content-Type: application/json'"
                   " -d '{\"user_id\":\"me\",\"data\":{\"provider\":\"echo_tool\",\"tool\":\"echo_tool\","
                   "\"credentials\":{},\"tool_parameters\":{\"text\":\"hello\"}}}'", err=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning",
                **connection_options)


@click.command()
@click.argument("package", type=PackageSource())
@connect
def install(daemon: DaemonClient, package: Path) -> None:
    """Upload PACKAGE (a .difypkg, or a bundle) to a daemon and install it, showing the progress of each plugin.

    PACKAGE may also be github:OWNER/NAME@VERSION, the package asset of that GitHub release.

    The server key comes from --key-file or PLUGDOCK_KEY."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from plugdock.packaging.archive import PackageArchive
    from plugdock.schema.yaml_source import load_yaml

    data = package.read_bytes()
    head = load_yaml(PackageArchive.open(data, max_size=len(data) * 2 + 1024).read("manifest.yaml") or b"",
                     "manifest.yaml").data
    if isinstance(head, dict) and head.get("type") == "bundle":
        started = daemon.call("POST", "/plugin/{tenant}/management/install/bundle",
                              files={"dify_bundle": (package.name, data)})
    else:
        uploaded = daemon.call("POST", "/plugin/{tenant}/management/install/upload/package",
                               files={"dify_pkg": (package.name, data)})
        started = daemon.call("POST", "/plugin/{tenant}/management/install/identifiers", json={
            "plugin_unique_identifiers": [uploaded["unique_identifier"]], "source": "package", "metas": [{}]})
        if started["all_installed"]:
            click.echo(f"{uploaded['unique_identifier']} is already installed")
            return
    # The progress line is for a person watching, on stderr: off a terminal rich would leave an empty line.
    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True, console=console,
                  disable=not console.is_terminal) as progress:
        bar = progress.add_task("installing")
        while True:
            task = daemon.call("GET", f"/plugin/{{tenant}}/management/install/tasks/{started['task_id']}")
            lines = [f"{p['plugin_id']}: {p['message'] or p['status']}" for p in task["plugins"]]
            progress.update(bar, description=f"[{task['completed_plugins']}/{task['total_plugins']}] "
                                             + " | ".join(lines))
            if task["status"] in ("success", "failed"):
                break
            time.sleep(0.3)
    for plugin in task["plugins"]:
        mark = "installed" if plugin["status"] == "success" else f"FAILED: {plugin['message']}"
        click.echo(f"{plugin['plugin_unique_identifier']}: {mark}")
    if task["status"] == "failed":
        raise PlugdockError("the install failed (see above)")


@click.command()
@click.argument("plugin_id")
@click.option("--lines", "-n", default=200, show_default=True, help="How many of the last lines to show.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines as they come, until Ctrl-C.")
@connect
def logs(daemon: DaemonClient, plugin_id: str, lines: int, follow: bool) -> None:
    """Print the log lines the daemon kept for PLUGIN_ID (author/name), each with its UTC time.

    Failed invocations are among them: which route, what error, when."""
    path = "/plugin/{tenant}/management/logs"
    try:
        data = daemon.call("GET", path, params={"plugin_id": plugin_id, "lines": lines})
        click.echo(f"# {data['plugin_unique_identifier']} ({data['state']})", err=True)
        _print_entries(data)
        last = int(data.get("last") or 0)
        while follow:
            time.sleep(1)
            data = daemon.call("GET", path, params={"plugin_id": plugin_id, "lines": 1000, "after": last})
            if int(data.get("last") or 0) < last:  # a new process (a restart): its lines start over
                data = daemon.call("GET", path, params={"plugin_id": plugin_id, "lines": 1000})
                click.echo(f"# {data['plugin_unique_identifier']} ({data['state']})", err=True)
            _print_entries(data)
            last = int(data.get("last") or 0)
    except KeyboardInterrupt:  # Ctrl-C is how -f ends: one line and 130, as for plugdock debug
        if not follow:
            raise
        click.echo("plugdock: stopped following", err=True)
        sys.exit(130)


def _print_entries(data: dict[str, Any]) -> None:
    entries = data.get("entries") or [{"time": "", "line": line} for line in data["lines"]]
    for entry in entries:
        click.echo(f"{entry['time']} {entry['line']}" if entry["time"] else entry["line"])


COMMANDS = [serve, install, logs]
