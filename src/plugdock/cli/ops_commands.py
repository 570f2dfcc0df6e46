"""Daemon chores without curl: ``plugins list|uninstall``, ``credentials set|list``, ``debug-key``.

Each names the daemon and its key the one way :mod:`plugdock.cli.daemon_client` defines, and no secret
ever goes on a command line: credential values come from a file, or are asked for (hidden when secret).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import click

from plugdock.cli.daemon_client import DaemonClient, connect, debug_address
from plugdock.errors import PlugdockError


@click.group()
def plugins() -> None:
    """List and uninstall the plugins a daemon has installed."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the daemon's records as JSON.")
@connect
def list_plugins(daemon: DaemonClient, as_json: bool) -> None:
    """List the tenant's installed plugins: id, version, runtime, source and when installed."""
    rows = installed(daemon)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no plugins installed for tenant {daemon.tenant}", err=True)
        return
    table = [("PLUGIN", "VERSION", "RUNTIME", "SOURCE", "INSTALLED")] + [
        (r["plugin_id"], r["version"], r["runtime_type"], r["source"], r["created_at"][:19].replace("T", " "))
        for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(5)]
    for row in table:
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def installed(daemon: DaemonClient) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        data = daemon.call("GET", "/plugin/{tenant}/management/list", params={"page": page, "page_size": 256})
        rows.extend(data["list"])
        if not data.get("has_more"):
            return rows
        page += 1


def find(daemon: DaemonClient, plugin_id: str) -> dict[str, Any]:
    for row in installed(daemon):
        if plugin_id in (row["plugin_id"], row["plugin_unique_identifier"]):
            return row
    raise PlugdockError(f"{plugin_id} is not installed for tenant {daemon.tenant} (plugdock plugins list shows "
                        "what is)")


@plugins.command()
@click.argument("plugin_id")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@connect
def uninstall(daemon: DaemonClient, plugin_id: str, yes: bool) -> None:
    """Uninstall PLUGIN_ID (author/name) for the tenant; its process stops once no tenant uses it."""
    row = find(daemon, plugin_id)
    if not yes and not click.get_text_stream("stdin").isatty():  # a prompt nobody can answer is no confirmation
        raise PlugdockError(f"not uninstalling {row['plugin_unique_identifier']}: stdin is not a terminal: pass -y "
                            "to uninstall without asking")
    if not yes:
        click.confirm(f"uninstall {row['plugin_unique_identifier']} for tenant {daemon.tenant}?", abort=True)
    daemon.call("POST", "/plugin/{tenant}/management/uninstall",
                json={"plugin_installation_id": row["installation_id"]})
    click.echo(f"{row['plugin_unique_identifier']}: uninstalled")


@click.group()
def credentials() -> None:
    """Store the credentials a daemon uses when it calls a provider itself."""


@credentials.command("set")
@click.argument("plugin_id")
@click.option("--provider", help="The provider's name; default: the plugin's only tool or model provider.")
@click.option("--from-file", "source", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A JSON object or NAME=VALUE lines (.env style) with the values; fields it lacks are asked for.")
@click.option("--set", "plain", multiple=True, metavar="NAME=VALUE",
              help="A value that is not secret (a secret-input field is refused here: use --from-file or the "
                   "prompt).")
@connect
def set_credentials(daemon: DaemonClient, plugin_id: str, provider: str | None, source: Path | None,
                    plain: tuple[str, ...]) -> None:
    """Store PLUGIN_ID's provider credentials; the daemon checks them against the provider's form.

    Declared fields that neither the file nor --set gives are asked for, secret ones hidden."""
    row = find(daemon, plugin_id)
    declaration = row["declaration"]
    kind = "model" if declaration.get("model") else "tool" if declaration.get("tool") else ""
    if not kind:
        raise PlugdockError(f"{plugin_id} has no tool or model provider to hold credentials")
    section = declaration[kind]
    name = provider or section.get("identity", {}).get("name") or section.get("provider")
    fields = form_fields(declaration, kind)
    values = read_values(source) if source is not None else {}
    for pair in plain:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PlugdockError(f"--set {pair!r}: expected NAME=VALUE")
        if fields.get(key, {}).get("type") == "secret-input":
            raise PlugdockError(f"--set {key}: {key} is a secret-input field; give it with --from-file or at the "
                                "prompt, never on the command line")
        values[key] = value
    if click.get_text_stream("stdin").isatty():  # else the daemon names each required field left out
        for field_name, field in fields.items():
            if field_name not in values:
                required = bool(field.get("required"))
                answer = click.prompt(f"{field_name}{'' if required else ' (optional)'}",
                                      hide_input=field.get("type") == "secret-input",
                                      default=None if required else "", show_default=False)
                if answer != "":
                    values[field_name] = answer
    stored = daemon.call("POST", "/plugin/{tenant}/management/credentials",
                         json={"plugin_id": row["plugin_id"], "provider": name, "credentials": values})
    shown = ", ".join(f"{k}={v}" for k, v in stored["credentials"].items())
    click.echo(f"{row['plugin_id']} ({stored['kind']} provider {stored['provider']}): {shown}")


@credentials.command("list")
@connect
def list_credentials(daemon: DaemonClient) -> None:
    """List the stored credentials, secret values hidden."""
    for item in daemon.call("GET", "/plugin/{tenant}/management/credentials"):
        shown = ", ".join(f"{k}={v}" for k, v in item["credentials"].items())
        click.echo(f"{item['plugin_id']} ({item['kind']} provider {item['provider']}): {shown}")


def form_fields(declaration: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    if kind == "tool":
        return {str(f.get("name")): f for f in declaration["tool"].get("credentials_schema") or []}
    forms = (declaration["model"].get("provider_credential_schema") or {}).get("credential_form_schemas") or []
    return {str(f.get("variable")): f for f in forms}


def read_values(path: Path) -> dict[str, Any]:
    """A JSON object, or NAME=VALUE lines (blank lines and # comments skipped); errors name the file and line."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise PlugdockError(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise PlugdockError(f"{path}: expected a JSON object of field names to values")
        return data
    values: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip():
            raise PlugdockError(f"{path}:{number}: expected NAME=VALUE")
        values[key.strip()] = value.strip().strip("'\"")
    return values


@click.command("debug-key")
@click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write REMOTE_INSTALL_URL and REMOTE_INSTALL_KEY into this .env file (mode 600) instead of "
                   "printing them; other lines are kept.")
@connect
def debug_key(daemon: DaemonClient, env_file: Path | None) -> None:
    """Get a remote-debugging key: the REMOTE_INSTALL_URL and REMOTE_INSTALL_KEY lines a plugin's .env takes.

    Keys last two hours from their last fetch; plugdock debug --daemon fetches one itself."""
    address, key = debug_address(daemon)
    lines = {"INSTALL_METHOD": "remote", "REMOTE_INSTALL_URL": address, "REMOTE_INSTALL_KEY": key}
    if env_file is None:
        for name, value in lines.items():
            click.echo(f"{name}={value}")
        return
    kept = []
    if env_file.exists():
        kept = [line for line in env_file.read_text(encoding="utf-8").splitlines()
                if line.partition("=")[0].strip().removeprefix("export ").strip() not in lines]
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join([*kept, *(f"{k}={v}" for k, v in lines.items())]) + "\n")
    env_file.chmod(0o600)
    click.echo(f"wrote REMOTE_INSTALL_URL={address} and a debug key to {env_file}", err=True)


COMMANDS = [plugins, credentials, debug_key]
