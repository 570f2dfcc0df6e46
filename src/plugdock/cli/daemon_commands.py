"""Daemon commands: ``serve`` (run the daemon), ``install`` (upload + install through its API), ``logs``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from plugdock.cli.secrets_input import Secret, resolve_secret, warn_password_in_url
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
def serve(host: str | None, port: int | None, home: Path | None, config_file: Path | None, db_url: str | None,
          print_config: bool, preinstall: tuple[Path, ...], sandbox: str | None, allow_unsigned: bool | None) -> None:
    """Run the plugin daemon (the official daemon's HTTP API)."""
    from plugdock.daemon.settings import load_settings

    warn_password_in_url("--db", db_url, "set DB_URL or PLUGDOCK_DB_URL, or db_url in the --config file,")

    settings = load_settings(config_file, {"host": host, "port": port, "home": home, "db_url": db_url,
                                           "preinstall": [str(p) for p in preinstall] or None, "sandbox": sandbox,
                                           "force_verifying_signature": False if allow_unsigned else None})
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


_DAEMON_HELP = "The daemon's URL (PLUGDOCK_DAEMON_URL)."
_KEY_FILE_HELP = ("File holding the daemon's server key, e.g. HOME/server.key written by plugdock serve "
                  "(or set PLUGDOCK_KEY).")
_KEY_HELP = ("Deprecated: the server key itself, which every local process can read in /proc/<pid>/cmdline; "
             "use --key-file or PLUGDOCK_KEY.")
SERVER_KEY_ENV = ("PLUGDOCK_KEY", "PLUGDOCK_SERVER_KEY")


def _server_key(key_file: Path | None, key: str | None) -> Secret:
    return resolve_secret(file_path=key_file, value=key, env_names=SERVER_KEY_ENV, what="server key",
                          hint=" (plugdock serve writes the key it generates to HOME/server.key)")


class _DaemonClient:
    """The daemon's management API: every failure (unreachable, key refused, error envelope) is one line."""

    def __init__(self, url: str, key: Secret) -> None:
        import httpx

        if url and not url.startswith(("http://", "https://")):
            raise PlugdockError(f"daemon URL {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        self.key = key
        # Installs may take minutes; a daemon that does not even accept the connection is named quickly.
        self._http = httpx.Client(base_url=self.url, headers={"X-Api-Key": key.value},
                                  timeout=httpx.Timeout(600, connect=15))

    def __enter__(self) -> _DaemonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise PlugdockError(f"cannot reach the daemon at {self.url}: {exc or type(exc).__name__} "
                                "(give --daemon or PLUGDOCK_DAEMON_URL)") from None
        if response.status_code == 401:
            raise PlugdockError(f"the daemon at {self.url} refused the server key from {self.key.source} "
                                "(HTTP 401): it must match the daemon's SERVER_KEY or HOME/server.key")
        return _data(response)


def _data(response: Any) -> Any:
    try:
        body = response.json()
    except ValueError:
        raise PlugdockError(f"daemon answered HTTP {response.status_code}: {response.text[:300]}") from None
    if not isinstance(body, dict):
        raise PlugdockError(f"daemon answered HTTP {response.status_code} with an unexpected body")
    if body.get("code") != 0:
        message = body.get("message", "")
        try:
            import json

            message = json.loads(message).get("message", message)
        except (ValueError, AttributeError, TypeError):
            pass
        raise PlugdockError(f"daemon refused: {message}")
    return body.get("data")


def _warn_daemon_url_password(daemon_url: str) -> None:
    if click.get_current_context().get_parameter_source("daemon_url") == click.core.ParameterSource.COMMANDLINE:
        warn_password_in_url("--daemon", daemon_url, "set PLUGDOCK_DAEMON_URL")


@click.command()
@click.argument("package", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--daemon", "daemon_url", envvar="PLUGDOCK_DAEMON_URL", default="http://127.0.0.1:5002",
              show_default=True, help=_DAEMON_HELP)
@click.option("--key-file", type=click.Path(readable=False, path_type=Path), help=_KEY_FILE_HELP)
@click.option("--key", help=_KEY_HELP)
@click.option("--tenant", default="default", show_default=True)
def install(package: Path, daemon_url: str, key_file: Path | None, key: str | None, tenant: str) -> None:
    """Upload PACKAGE (a .difypkg, or a bundle) to a daemon and install it, showing the progress of each plugin.

    The server key comes from --key-file or PLUGDOCK_KEY (PLUGDOCK_SERVER_KEY also works)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from plugdock.packaging.archive import PackageArchive
    from plugdock.schema.yaml_source import load_yaml

    _warn_daemon_url_password(daemon_url)
    secret = _server_key(key_file, key)
    data = package.read_bytes()
    head = load_yaml(PackageArchive.open(data, max_size=len(data) * 2 + 1024).read("manifest.yaml") or b"",
                     "manifest.yaml").data
    with _DaemonClient(daemon_url, secret) as daemon:
        if isinstance(head, dict) and head.get("type") == "bundle":
            started = daemon.call("POST", f"/plugin/{tenant}/management/install/bundle",
                                  files={"dify_bundle": (package.name, data)})
        else:
            uploaded = daemon.call("POST", f"/plugin/{tenant}/management/install/upload/package",
                                   files={"dify_pkg": (package.name, data)})
            started = daemon.call("POST", f"/plugin/{tenant}/management/install/identifiers", json={
                "plugin_unique_identifiers": [uploaded["unique_identifier"]], "source": "package", "metas": [{}]})
            if started["all_installed"]:
                click.echo(f"{uploaded['unique_identifier']} is already installed")
                return
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True) as progress:
            bar = progress.add_task("installing")
            while True:
                task = daemon.call("GET", f"/plugin/{tenant}/management/install/tasks/{started['task_id']}")
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
@click.option("--daemon", "daemon_url", envvar="PLUGDOCK_DAEMON_URL", default="http://127.0.0.1:5002",
              show_default=True, help=_DAEMON_HELP)
@click.option("--key-file", type=click.Path(readable=False, path_type=Path), help=_KEY_FILE_HELP)
@click.option("--key", help=_KEY_HELP)
@click.option("--tenant", default="default", show_default=True)
@click.option("--lines", "-n", default=200, show_default=True)
def logs(plugin_id: str, daemon_url: str, key_file: Path | None, key: str | None, tenant: str, lines: int) -> None:
    """Print the last log lines the daemon kept for PLUGIN_ID (author/name).

    The server key comes from --key-file or PLUGDOCK_KEY (PLUGDOCK_SERVER_KEY also works)."""
    _warn_daemon_url_password(daemon_url)
    secret = _server_key(key_file, key)
    with _DaemonClient(daemon_url, secret) as daemon:
        data = daemon.call("GET", f"/plugin/{tenant}/management/logs", params={"plugin_id": plugin_id, "lines": lines})
    click.echo(f"# {data['plugin_unique_identifier']} ({data['state']})", err=True)
    for line in data["lines"]:
        click.echo(line)


COMMANDS = [serve, install, logs]
