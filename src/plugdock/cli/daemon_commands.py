"""Daemon commands: ``serve`` (run the daemon), ``install`` (upload + install through its API), ``logs``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

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
@click.option("--db", "db_url", help="Database URL (DB_URL); SQLite under the home by default.")
@click.option("--print-config", is_flag=True, help="Show every setting, its value and where it came from; exit.")
@click.option("--preinstall", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Plugin folder, folder of plugin folders, or .difypkg to install for tenant 'default' at start.")
@click.option("--sandbox", type=click.Choice(["none", "process"]),
              help="Plugin containment (PLUGDOCK_SANDBOX, default process): limits, no_new_privs and, as root, a "
                   "uid per plugin.")
def serve(host: str | None, port: int | None, home: Path | None, config_file: Path | None, db_url: str | None,
          print_config: bool, preinstall: tuple[Path, ...], sandbox: str | None) -> None:
    """Run the plugin daemon (the official daemon's HTTP API)."""
    from plugdock.daemon.settings import load_settings

    settings = load_settings(config_file, {"host": host, "port": port, "home": home, "db_url": db_url,
                                           "preinstall": [str(p) for p in preinstall] or None, "sandbox": sandbox})
    if print_config:
        width = max(len(name) for name, _, _ in settings.describe())
        for name, value, source in settings.describe():
            click.echo(f"{name:<{width}}  {value}  ({source})")
        return
    _require_daemon_extra()
    import uvicorn

    from plugdock.daemon.app import create_app

    base = f"http://{settings.host}:{settings.port}"
    click.echo(f"plugdock daemon on {base}  (home {settings.home}, database {settings.database_shown})", err=True)
    # The key itself never goes to a log: say where it is.
    source = settings.sources.get("server_key", "")
    key_file = settings.home / "server.key"
    key_shell = f"$(cat {key_file})" if "generated" in source else "$SERVER_KEY"
    click.echo(f"API key: {'in ' + str(key_file) if 'generated' in source else 'from ' + source}", err=True)
    click.echo(f"sandbox: {settings.sandbox}", err=True)
    if settings.preinstall:
        click.echo("try it, once the examples are installed:", err=True)
        click.echo(f"  curl -N -X POST {base}/plugin/default/dispatch/tool/invoke -H \"X-Api-Key: "
                   f"{key_shell}\" -H 'X-Plugin-ID: plugdock/echo_tool' -H 'Content-Type: application/json'"
                   " -d '{\"user_id\":\"me\",\"data\":{\"provider\":\"echo_tool\",\"tool\":\"echo_tool\","
                   "\"credentials\":{},\"tool_parameters\":{\"text\":\"hello\"}}}'", err=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")


def _client(daemon: str, key: str) -> Any:
    import httpx

    return httpx.Client(base_url=daemon.rstrip("/"), headers={"X-Api-Key": key}, timeout=600)


def _data(response: Any) -> Any:
    try:
        body = response.json()
    except ValueError:
        raise PlugdockError(f"daemon answered HTTP {response.status_code}: {response.text[:300]}") from None
    if body.get("code") != 0:
        message = body.get("message", "")
        try:
            import json

            message = json.loads(message).get("message", message)
        except (ValueError, AttributeError):
            pass
        raise PlugdockError(f"daemon refused: {message}")
    return body.get("data")


@click.command()
@click.argument("package", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--daemon", "daemon_url", default="http://127.0.0.1:5002", show_default=True)
@click.option("--key", envvar="PLUGDOCK_SERVER_KEY", required=True, help="The daemon's server key.")
@click.option("--tenant", default="default", show_default=True)
def install(package: Path, daemon_url: str, key: str, tenant: str) -> None:
    """Upload PACKAGE (a .difypkg, or a bundle) to a daemon and install it, showing the progress of each plugin."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from plugdock.packaging.archive import PackageArchive
    from plugdock.schema.yaml_source import load_yaml

    data = package.read_bytes()
    head = load_yaml(PackageArchive.open(data, max_size=len(data) * 2 + 1024).read("manifest.yaml") or b"",
                     "manifest.yaml").data
    with _client(daemon_url, key) as client:
        if isinstance(head, dict) and head.get("type") == "bundle":
            started = _data(client.post(f"/plugin/{tenant}/management/install/bundle",
                                        files={"dify_bundle": (package.name, data)}))
        else:
            uploaded = _data(client.post(f"/plugin/{tenant}/management/install/upload/package",
                                         files={"dify_pkg": (package.name, data)}))
            started = _data(client.post(f"/plugin/{tenant}/management/install/identifiers", json={
                "plugin_unique_identifiers": [uploaded["unique_identifier"]], "source": "package", "metas": [{}]}))
            if started["all_installed"]:
                click.echo(f"{uploaded['unique_identifier']} is already installed")
                return
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True) as progress:
            bar = progress.add_task("installing")
            while True:
                task = _data(client.get(f"/plugin/{tenant}/management/install/tasks/{started['task_id']}"))
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
@click.option("--daemon", "daemon_url", default="http://127.0.0.1:5002", show_default=True)
@click.option("--key", envvar="PLUGDOCK_SERVER_KEY", required=True)
@click.option("--tenant", default="default", show_default=True)
@click.option("--lines", "-n", default=200, show_default=True)
def logs(plugin_id: str, daemon_url: str, key: str, tenant: str, lines: int) -> None:
    """Print the last log lines the daemon kept for PLUGIN_ID (author/name)."""
    with _client(daemon_url, key) as client:
        data = _data(client.get(f"/plugin/{tenant}/management/logs", params={"plugin_id": plugin_id, "lines": lines}))
    click.echo(f"# {data['plugin_unique_identifier']} ({data['state']})", err=True)
    for line in data["lines"]:
        click.echo(line)


COMMANDS = [serve, install, logs]
