"""Typed tools on the command line: ``plugdock generate`` writes tool YAML from ``@tool`` functions, and
``validate`` (through ``typed_drift``) reports where the YAML and the code disagree."""

from __future__ import annotations

import posixpath
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from plugdock.errors import PlugdockError
from plugdock.schema.plugin import LoadedPlugin, is_safe_relative
from plugdock.schema.problems import Problem
from plugdock.schema.unlisted_tools import TYPED_MODULE
from plugdock.schema.yaml_source import load_yaml


def _typed_tools_of(root: Path, source: str) -> list[Any]:
    from plugdock.runtime.registry import import_source
    from plugdock.sdk.typed import typed_tools

    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return typed_tools(import_source(root, source))


def typed_drift(root: Path, plugin: LoadedPlugin) -> list[Problem]:
    """Errors for tool YAML that no longer matches its ``@tool`` function (this imports the plugin's code)."""
    from plugdock.cli.typed_merge import staleness
    from plugdock.runtime.registry import RegistryError

    problems: list[Problem] = []
    for key, rel in plugin.files.items():
        if not key.startswith("tool:"):
            continue
        doc = load_yaml((root / rel).read_bytes(), rel)
        data = doc.data if isinstance(doc.data, dict) else {}
        source = ((data.get("extra") or {}).get("python") or {}).get("source")
        if not source or not (root / source).is_file() or TYPED_MODULE not in (root / source).read_text():
            continue
        try:
            typed = _typed_tools_of(root, source)
        except RegistryError as exc:
            problems.append(Problem(source, 1, 1, "", str(exc)))
            continue
        name = (data.get("identity") or {}).get("name")
        match = [t for t in typed if t.name == name] or (typed if len(typed) == 1 else [])
        if match and plugin.manifest is not None:
            match[0].author = match[0].author or plugin.manifest.author  # as generate fills it
        for message in staleness(match[0], data, source) if match else []:
            problems.append(doc.problem(("parameters",), f"out of date with {source} ({message}); "
                                                         f"run `plugdock generate {root}`"))
    return problems


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if any tool YAML is out of date.")
def generate(directory: Path, check: bool) -> None:
    """Write tools/<name>.yaml for every @tool function in tools/*.py (typed tools).

    An existing file is merged into, not replaced: the code's names, types, required flags, defaults, options and
    schemas go in; form, translations and keys the code cannot express stay. --check fails exactly when validate
    reports the YAML out of date."""
    from plugdock.cli.typed_merge import merged_declaration, plain, staleness

    root = directory.resolve()
    manifest = load_yaml((root / "manifest.yaml").read_bytes() if (root / "manifest.yaml").exists() else b"",
                         "manifest.yaml").data or {}
    author = str(manifest.get("author", "")) if isinstance(manifest, dict) else ""
    stale = 0
    found = 0
    declarations: list[str] = []
    for path in sorted((root / "tools").glob("*.py")):
        if TYPED_MODULE not in path.read_text():
            continue
        source = path.relative_to(root).as_posix()
        for typed in _typed_tools_of(root, source):
            found += 1
            typed.author = typed.author or author
            target = root / "tools" / f"{typed.name}.yaml"
            rel = target.relative_to(root).as_posix()
            declarations.append(rel)
            existing = load_yaml(target.read_bytes(), rel).data if target.exists() else None
            if isinstance(existing, dict) and not staleness(typed, existing, source):
                continue
            stale += 1
            if check:
                why = "; ".join(staleness(typed, existing, source)) if isinstance(existing, dict) else "missing"
                click.echo(f"{rel} is out of date with {source} ({why})")
                continue
            merged = merged_declaration(typed, existing if isinstance(existing, dict) else None, source)
            target.write_text(yaml.safe_dump(plain(merged), sort_keys=False, allow_unicode=True))
            click.echo(f"{'updated' if isinstance(existing, dict) else 'wrote'} {rel}"
                       + (" (hand edits the code cannot express kept)" if isinstance(existing, dict) else ""))
    if not found:
        raise PlugdockError(f"no @tool functions found in {root / 'tools'}/*.py")
    _list_in_provider(root, manifest, declarations, check)
    if check and stale:
        raise SystemExit(1)
    click.echo(f"{found} typed tool(s), {stale} {'out of date' if check else 'written'}")


def _list_in_provider(root: Path, manifest: Any, rels: list[str], check: bool) -> None:
    """Put each typed tool's YAML in the tool provider's ``tools:`` list: the daemon serves only the tools listed
    there. With several providers (or none) nothing is written: the message names the file and where it goes.
    ``--check`` only reports, as ``validate`` warns without failing."""
    from plugdock.cli.typed_merge import with_tools_listed

    plugins = manifest.get("plugins") if isinstance(manifest, dict) else None
    providers = [p for p in (plugins or {}).get("tools") or [] if isinstance(p, str)] \
        if isinstance(plugins, dict) else []
    listed: set[str] = set()
    for provider in providers:
        path = root / provider
        data = load_yaml(path.read_bytes(), provider).data if is_safe_relative(provider) and path.is_file() else None
        tools = data.get("tools") if isinstance(data, dict) else None
        listed |= {posixpath.normpath(t) for t in tools if isinstance(t, str)} if isinstance(tools, list) else set()
    missing = [rel for rel in rels if rel not in listed]
    if not missing:
        return
    if len(providers) != 1 or check or not (root / providers[0]).is_file():
        where = (f"`tools:` in {' or '.join(providers)}" if providers
                 else "`tools:` of a tool provider, which manifest.yaml's plugins.tools must name")
        for rel in missing:
            hint = "; `plugdock generate` adds it" if check and len(providers) == 1 else ""
            click.secho(f"warning: {rel} is not listed, so the daemon does not serve it: add `- {rel}` under "
                        f"{where}{hint}", fg="yellow", err=True)
        return
    target = root / providers[0]
    try:
        target.write_text(with_tools_listed(target.read_text(encoding="utf-8"), missing), encoding="utf-8")
    except yaml.YAMLError as exc:
        raise PlugdockError(f"{providers[0]}: cannot add {', '.join(missing)} to its tools: list ({exc})") from exc
    for rel in missing:
        click.echo(f"listed {rel} under tools: in {providers[0]}")


COMMANDS = [generate]


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--to", "target", type=click.Choice(["plugdock", "dify"]), default="plugdock", show_default=True,
              help="Which SDK the imports should name afterwards.")
@click.option("--dry-run", is_flag=True, help="Print every change as a unified diff; write nothing.")
def port(directory: Path, target: str, dry_run: bool) -> None:
    """Rewrite a plugin's imports between the official dify_plugin SDK and plugdock (same names, same API).

    The dependency files follow: requirements.txt and pyproject.toml name plugdock (--to dify: dify_plugin), and
    uv.lock is re-locked with uv (removed, with a warning, when uv cannot lock it). Packages of a plugdock plugin
    carry plugdock inside; --to dify makes a plugin for the official SDK instead."""
    from plugdock.cli.porting import apply, plan_port

    plan = plan_port(directory, target)
    for change in plan.changes:
        if dry_run:
            click.echo(change.diff(), nl=False)
        else:
            verb = "removed" if change.new is None else "rewrote"
            click.echo(f"{verb} {change.path}")
    for note in plan.notes:
        click.secho(f"warning: {note}", fg="yellow", err=True)
    if not dry_run:
        apply(directory, plan)
    click.echo(f"{len(plan.changes)} file(s) {'to change' if dry_run else 'changed'}", err=dry_run)
    if not dry_run and plan.changes:
        click.echo(f"next: plugdock validate {directory} && plugdock package {directory}")


COMMANDS.append(port)
