"""Commands that run a plugin: ``run`` (stdio, as a daemon launches it), ``invoke`` (one call) and ``debug``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from plugdock.errors import PlugdockError


def _entry(directory: Path) -> str:
    from plugdock.runtime.registry import read_yaml

    manifest = read_yaml(directory, "manifest.yaml")
    return str(((manifest.get("meta") or {}).get("runner") or {}).get("entrypoint") or "main")


def _exec_plugin(directory: Path, env: dict[str, str]) -> None:
    """Replace this process by ``python -m <entrypoint>`` in the plugin folder, exactly as a daemon starts it."""
    entry = _entry(directory)
    os.chdir(directory)
    os.execvpe(sys.executable, [sys.executable, "-m", entry], {**os.environ, **env})


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def run(directory: Path) -> None:
    """Serve the plugin over stdio (JSON lines), as the daemon launches it."""
    _exec_plugin(directory.resolve(), {"INSTALL_METHOD": "local"})


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--url", required=True, help="The daemon's debug address, HOST:PORT.")
@click.option("--key-file", type=click.Path(readable=False, path_type=Path),
              help="File holding the debug key from the daemon (POST /plugin/{tenant}/debugging/key); or set "
                   "PLUGDOCK_DEBUG_KEY (or REMOTE_INSTALL_KEY, the official SDK's name).")
@click.option("--key", help="Deprecated: the debug key itself, which every local process can read in "
                            "/proc/<pid>/cmdline; use --key-file or PLUGDOCK_DEBUG_KEY.")
def debug(directory: Path, url: str, key_file: Path | None, key: str | None) -> None:
    """Connect the plugin to a daemon for remote debugging.

    The key goes to the plugin in its environment (REMOTE_INSTALL_KEY), never on its command line."""
    from plugdock.cli.secrets_input import resolve_secret

    secret = resolve_secret(file_path=key_file, value=key, env_names=("PLUGDOCK_DEBUG_KEY", "REMOTE_INSTALL_KEY"),
                            what="debug key")
    _exec_plugin(directory.resolve(), {"INSTALL_METHOD": "remote", "REMOTE_INSTALL_URL": url,
                                       "REMOTE_INSTALL_KEY": secret.value})


def _pairs(values: tuple[str, ...], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{what} {item!r} must look like key=value")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _print_chunk(chunk: Any) -> None:
    if isinstance(chunk, dict) and chunk.get("type") == "text":
        click.echo(chunk["message"]["text"])
    elif isinstance(chunk, dict) and isinstance(chunk.get("delta"), dict):
        content = chunk["delta"]["message"].get("content")
        click.echo(content if isinstance(content, str) else json.dumps(content), nl=False)
    else:
        click.echo(json.dumps(chunk, ensure_ascii=False))


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("kind", type=click.Choice(["tool", "llm", "agent-strategy", "endpoint"]))
@click.argument("name")
@click.option("--provider", help="Provider name (default: the plugin's only provider).")
@click.option("--param", "-p", "params", multiple=True, help="key=value (JSON values allowed); repeatable.")
@click.option("--credential", "-c", "credentials", multiple=True, help="key=value credential; repeatable.")
@click.option("--prompt", help="For llm: the user message.")
@click.option("--json", "as_json", is_flag=True, help="Print every chunk as JSON.")
def invoke(directory: Path, kind: str, name: str, provider: str | None, params: tuple[str, ...],
           credentials: tuple[str, ...], prompt: str | None, as_json: bool) -> None:
    """Call one tool, LLM, agent strategy or endpoint in-process and print what it streams.

    For an endpoint, NAME is "METHOD /path?query"; for llm, NAME is the model.
    """
    from plugdock.runtime.registry import RegistryError
    from plugdock.testing import PluginTestClient

    try:
        client = PluginTestClient(directory)
    except RegistryError as exc:
        raise PlugdockError(str(exc)) from exc
    registry = client.registry
    printer = (lambda c: click.echo(json.dumps(c, ensure_ascii=False))) if as_json else _print_chunk
    parameters, creds = _pairs(params, "--param"), _pairs(credentials, "--credential")
    if kind == "endpoint":
        method, _, path = name.partition(" ")
        response = client.invoke_endpoint(method.upper(), path or "/", settings=parameters)
        click.echo(f"HTTP {response.status}", err=True)
        sys.stdout.buffer.write(response.body)
        return
    if kind == "tool":
        provider = provider or _only(registry.tool_providers, "tool provider")
        result = client.request("tool", "invoke_tool", {"provider": provider, "tool": name,
                                                        "tool_parameters": parameters, "credentials": creds},
                                on_chunk=printer)
    elif kind == "agent-strategy":
        provider = provider or _only(registry.agent_providers, "agent strategy provider")
        result = client.request("agent_strategy", "invoke_agent_strategy", {
            "agent_strategy_provider": provider, "agent_strategy": name, "agent_strategy_params": parameters},
            on_chunk=printer)
    else:
        provider = provider or _only(registry.model_providers, "model provider")
        result = client.request("model", "invoke_llm", {
            "provider": provider, "model_type": "llm", "model": name, "credentials": creds,
            "prompt_messages": [{"role": "user", "content": prompt or ""}], "model_parameters": parameters,
            "tools": [], "stop": [], "stream": True}, on_chunk=printer)
        click.echo("")
    if result.error:
        raise PlugdockError(f"{result.error['error_type']}: {result.error['message']}")


def _only(entries: dict[str, Any], what: str) -> str:
    if len(entries) != 1:
        raise PlugdockError(f"the plugin has {len(entries)} {what}s; pass --provider")
    return next(iter(entries))


COMMANDS = [run, invoke, debug]
