"""Commands that run a plugin: ``run`` (stdio, as a daemon launches it), ``invoke`` (one call) and ``debug``."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from plugdock.errors import PlugdockError
from plugdock.testing.parameters import only_provider


def _entry(directory: Path) -> str:
    """The module a daemon would start (the manifest's entrypoint); a folder that is no plugin is one error line."""
    from plugdock.runtime.registry import RegistryError, read_yaml

    if not (directory / "manifest.yaml").is_file():
        where = f"the current folder ({directory.resolve()})" if directory == Path(".") else repr(str(directory))
        command = click.get_current_context().command_path
        raise PlugdockError(f"{where} holds no manifest.yaml: run from a plugin folder or name it: {command} DIR")
    try:
        manifest = read_yaml(directory, "manifest.yaml")
    except RegistryError as exc:
        raise PlugdockError(f"{directory}: {' '.join(str(exc).split())}") from None  # YAML's message, one line
    meta = manifest.get("meta") if isinstance(manifest, dict) else None  # a bad manifest: the runtime names it
    runner = meta.get("runner") if isinstance(meta, dict) else None
    return str((runner.get("entrypoint") if isinstance(runner, dict) else None) or "main")


def _exec_plugin(directory: Path, entry: str, env: dict[str, str]) -> None:
    """Replace this process by ``python -m <entrypoint>`` in the plugin folder, exactly as a daemon starts it."""
    os.chdir(directory)
    os.execvpe(sys.executable, [sys.executable, "-m", entry], {**os.environ, **env})


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def run(directory: Path) -> None:
    """Serve the plugin over stdio (JSON lines), as the daemon launches it."""
    _exec_plugin(directory.resolve(), _entry(directory), {"INSTALL_METHOD": "local"})


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--daemon", "daemon_url", envvar="PLUGDOCK_DAEMON_URL", default="http://127.0.0.1:5002",
              show_default=True, help="The daemon's URL (or set PLUGDOCK_DAEMON_URL); a debug key and the debug "
                                      "address are fetched from it.")
@click.option("--key-file", type=click.Path(readable=False, path_type=Path),
              help="File holding the daemon's server key (or set PLUGDOCK_KEY); default: PLUGDOCK_HOME/server.key "
                   "when it exists. With the deprecated --url: the debug key's file.")
@click.option("--key", hidden=True, help="Deprecated: a key on the command line.")
@click.option("--tenant", default="default", show_default=True, help="The tenant the plugin appears in.")
@click.option("--url", hidden=True, help="Deprecated alias: the debug address HOST:PORT, with a debug key "
                                         "(--key-file, PLUGDOCK_DEBUG_KEY or REMOTE_INSTALL_KEY).")
def debug(directory: Path, daemon_url: str, key_file: Path | None, key: str | None, tenant: str,
          url: str | None) -> None:
    """Connect the plugin to a daemon for remote debugging; Ctrl-C disconnects it.

    The key goes to the plugin in its environment (REMOTE_INSTALL_KEY), never on its command line."""
    from plugdock.cli.daemon_client import debug_target

    entry = _entry(directory)  # before asking the daemon for a key: a folder that is no plugin needs none
    address, debug_key = debug_target(daemon_url, url, key_file, key, tenant)
    _exec_plugin(directory.resolve(), entry, {"INSTALL_METHOD": "remote", "REMOTE_INSTALL_URL": address,
                                              "REMOTE_INSTALL_KEY": debug_key})


def _debugging() -> bool:
    return os.environ.get("PLUGDOCK_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


class _Printer:
    """Renders what the plugin streams for a person (text as text, JSON messages as JSON) or, with
    ``--json``, one wire chunk per line; always to the real stdout, which the plugin's ``print()`` never
    reaches (it goes to stderr while the plugin runs)."""

    def __init__(self, out: Any, as_json: bool) -> None:
        self.out, self.as_json = out, as_json

    def __call__(self, chunk: Any) -> None:
        if self.as_json:
            click.echo(json.dumps(chunk, ensure_ascii=False), file=self.out)
            return
        kind = chunk.get("type") if isinstance(chunk, dict) else None
        message = chunk.get("message") if isinstance(chunk, dict) else None
        message = message if isinstance(message, dict) else {}
        if isinstance(chunk, dict) and isinstance(chunk.get("delta"), dict):
            content = chunk["delta"]["message"].get("content")
            click.echo(content if isinstance(content, str) else json.dumps(content), nl=False, file=self.out)
        elif kind in ("text", "link", "image", "image_link"):
            click.echo(message.get("text", ""), file=self.out)
        elif kind == "json":
            click.echo(json.dumps(message.get("json_object"), indent=2, ensure_ascii=False), file=self.out)
        elif kind == "variable":
            value = json.dumps(message.get("variable_value"), ensure_ascii=False)
            click.echo(f"{message.get('variable_name')} = {value}", file=self.out)
        elif kind == "blob_chunk":
            if message.get("end"):
                mime = (chunk.get("meta") or {}).get("mime_type", "application/octet-stream")
                click.echo(f"[blob: {message.get('total_length')} bytes, {mime}]", file=self.out)
        elif kind == "log":
            click.echo(f"[log] {message.get('label', '')}: {message.get('status', '')}", err=True)
        else:
            click.echo(json.dumps(chunk, indent=2, ensure_ascii=False), file=self.out)


INVOKE_KINDS = ("tool", "llm", "agent-strategy", "endpoint", "datasource", "trigger")


def _invoke_words(words: tuple[str, ...]) -> tuple[Path, str, str]:
    """``[DIR] KIND NAME``: DIR is ``.`` when only two words are given, as for every other command."""
    if len(words) not in (2, 3):
        raise click.UsageError(f"expected [DIR] KIND NAME, got {len(words)} word(s)")
    directory, kind, name = (".", *words) if len(words) == 2 else words
    if kind not in INVOKE_KINDS:
        raise click.BadParameter(f"{kind!r} is not one of {', '.join(INVOKE_KINDS)}", param_hint="KIND")
    folder = Path(directory)
    if not folder.is_dir():
        raise click.BadParameter(f"folder {directory!r} does not exist", param_hint="DIR")
    if not (folder / "manifest.yaml").is_file():
        where = "the current folder" if len(words) == 2 else repr(directory)
        raise click.BadParameter(f"{where} holds no manifest.yaml: run from a plugin folder or name it first",
                                 param_hint="DIR")
    return folder, kind, name


@click.command()
@click.argument("words", nargs=-1, required=True, metavar="[DIR] KIND NAME")
@click.option("--provider", help="Provider name (default: the plugin's only provider).")
@click.option("--param", "-p", "params", multiple=True,
              help="key=value, read by the parameter's declared type (a string stays a string; arrays and "
                   "objects as JSON); repeatable.")
@click.option("--credential", "-c", "credentials", multiple=True, help="key=value credential; repeatable.")
@click.option("--prompt", help="For llm: the user message.")
@click.option("--json", "as_json", is_flag=True, help="Print every chunk as one JSON line (wire form).")
def invoke(words: tuple[str, ...], provider: str | None, params: tuple[str, ...],
           credentials: tuple[str, ...], prompt: str | None, as_json: bool) -> None:
    """Call one tool, LLM, agent strategy, endpoint, datasource or trigger action in-process and print
    what it streams.

    DIR defaults to the current folder; KIND is tool, llm, agent-strategy, endpoint, datasource or
    trigger. For an endpoint, NAME is "METHOD /path?query"; for llm, NAME is the model. Values are checked
    against the declarations first (types, required parameters and credentials, select options); the
    plugin's print() goes to stderr; PLUGDOCK_DEBUG=1 shows the plugin-side traceback of an error.
    """
    from plugdock.runtime.registry import RegistryError
    from plugdock.testing import PluginTestClient
    from plugdock.testing.parameters import InputError, split_pairs

    directory, kind, name = _invoke_words(words)
    try:
        client = PluginTestClient(directory)
    except RegistryError as exc:
        raise PlugdockError(str(exc)) from exc
    printer = _Printer(sys.stdout, as_json)
    try:  # a value that does not fit its declaration is a usage error (exit 2), named before any call
        raw_params, raw_creds = split_pairs(params, "--param"), split_pairs(credentials, "--credential")
        if kind == "endpoint":
            settings = _read(raw_params, client.registry.endpoint_settings, "setting", "the endpoint group", "-p")
        else:
            action, data = _request(client, kind, name, provider, raw_params, raw_creds, prompt)
    except InputError as exc:
        raise click.UsageError(exc.message) from None
    if kind == "endpoint":
        method, _, path = name.partition(" ")
        with contextlib.redirect_stdout(sys.stderr):
            response = client.invoke_endpoint(method.upper(), path or "/", settings=settings)
        click.echo(f"HTTP {response.status}", err=True)
        sys.stdout.flush()
        sys.stdout.buffer.write(response.body)
        return
    with contextlib.redirect_stdout(sys.stderr):
        result = client.request(*action, data, on_chunk=printer)
    if kind == "llm" and not as_json:
        click.echo("")
    if result.error:
        if _debugging() and result.traceback:
            click.echo(result.traceback.rstrip(), err=True)
        raise PlugdockError(result.error_line or "")


def _read(pairs: dict[str, str], declared: Any, what: str, subject: str, flag: str) -> dict[str, Any]:
    from plugdock.testing.parameters import declared_fields, read_values

    return read_values(pairs, declared_fields(declared), what, subject, flag)


def _request(client: Any, kind: str, name: str, provider: str | None, params: dict[str, str],
             creds: dict[str, str], prompt: str | None) -> tuple[tuple[str, str], dict[str, Any]]:
    """The request for ``kind``, its values read by what the plugin declares for them."""
    from plugdock.testing.parameters import read_values, typed_fields

    registry = client.registry
    if kind == "datasource":
        from plugdock.cli.datasource_invoke import datasource_request

        return datasource_request(registry, name, provider, params, creds)
    if kind == "trigger":
        from plugdock.cli.trigger_invoke import trigger_request

        return trigger_request(registry, name, provider, params, creds)
    if kind == "tool":
        provider = provider or only_provider(registry.tool_providers, "tool provider")
        entry = registry.tool_providers.get(provider)
        declaration = entry.tool_declarations.get(name) if entry else None
        if entry is not None and declaration is not None:  # else the call itself says what is not found
            decl = entry.declaration
            creds_decl = decl.get("credentials_for_provider") or decl.get("credentials_schema")
            credentials = _read(creds, creds_decl, "credential", f"tool provider {provider}", "-c")
            typed = entry.typed.get(name)
            fields = typed_fields(typed) if typed is not None else None
            parameters = (read_values(params, fields, "parameter", f"tool {name}", "-p") if fields is not None
                          else _read(params, declaration.get("parameters") or [], "parameter", f"tool {name}",
                                     "-p"))
        else:
            parameters, credentials = read_values(params, None, "parameter", "", ""), dict(creds)
        return ("tool", "invoke_tool"), {"provider": provider, "tool": name, "tool_parameters": parameters,
                                         "credentials": credentials}
    if kind == "agent-strategy":
        provider = provider or only_provider(registry.agent_providers, "agent strategy provider")
        agent = registry.agent_providers.get(provider)
        declaration = agent.strategy_declarations.get(name) if agent else None
        parameters = (_read(params, declaration.get("parameters") or [], "parameter", f"agent strategy {name}",
                            "-p") if declaration is not None else read_values(params, None, "parameter", "", ""))
        return ("agent_strategy", "invoke_agent_strategy"), {
            "agent_strategy_provider": provider, "agent_strategy": name, "agent_strategy_params": parameters}
    provider = provider or only_provider(registry.model_providers, "model provider")
    model = registry.model_providers.get(provider)
    rules = next((d.get("parameter_rules") for d in (model.model_declarations if model else [])
                  if d.get("model") == name), None)
    schema = (model.declaration.get("provider_credential_schema") or {}) if model else {}
    credentials = _read(creds, schema.get("credential_form_schemas") or [], "credential",
                        f"model provider {provider}", "-c")
    parameters = (_read(params, rules, "model parameter", f"model {name}", "-p") if rules is not None
                  else read_values(params, None, "model parameter", "", ""))
    return ("model", "invoke_llm"), {
        "provider": provider, "model_type": "llm", "model": name, "credentials": credentials,
        "prompt_messages": [{"role": "user", "content": prompt or ""}], "model_parameters": parameters,
        "tools": [], "stop": [], "stream": True}


COMMANDS = [run, invoke, debug]
