"""Authoring commands: ``validate``, ``schema`` and ``init``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click

from plugdock.cli.templates import (
    DEFAULT_TOOL,
    PluginAnswers,
    check_author,
    check_contact,
    check_name,
    check_repo,
    check_tool,
    render_plugin,
)
from plugdock.cli.templates import KINDS as TEMPLATE_KINDS
from plugdock.errors import PlugdockError
from plugdock.packaging.archive import ArchiveSource, PackageArchive
from plugdock.packaging.ignore import ignore_filter
from plugdock.schema import KINDS
from plugdock.schema.bundle_loader import load_bundle
from plugdock.schema.imports_check import import_problems
from plugdock.schema.plugin import DirectorySource, FileSource, load_plugin
from plugdock.schema.problems import Problem
from plugdock.schema.yaml_source import load_yaml


def open_source(path: Path) -> FileSource:
    """A plugin folder (with ``.difyignore`` applied, as it will be packaged) or a ``.difypkg``."""
    if path.is_dir():
        return DirectorySource(path, exclude=ignore_filter(path))
    if path.is_file():
        return ArchiveSource(PackageArchive.open(path))
    raise PlugdockError(f"{path}: no such plugin folder or package")


def check(path: Path) -> tuple[list[Problem], str]:
    source = open_source(path)
    head = load_yaml(source.read("manifest.yaml") or b"", "manifest.yaml").data
    if isinstance(head, dict) and head.get("type") == "bundle":
        _, problems = load_bundle(source)
        return problems, "bundle"
    plugin = load_plugin(source)
    kind = plugin.manifest.category if plugin.manifest else "plugin"
    problems = list(plugin.problems) + import_problems(source)
    if path.is_dir() and plugin.ok:
        from plugdock.cli.typed_commands import typed_drift

        problems += typed_drift(path.resolve(), plugin)
    return problems, kind


@click.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the problems as JSON.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def validate(target: Path, as_json: bool, strict: bool) -> None:
    """Check a plugin folder or .difypkg and report every problem as file:line:column: field: message."""
    problems, kind = check(target)
    errors = [p for p in problems if p.is_error or strict]
    if as_json:
        click.echo(json.dumps({"valid": not errors, "kind": kind, "problems": [p.to_dict() for p in problems]},
                              indent=2))
    else:
        for problem in problems:
            click.secho(str(problem), fg="red" if problem.is_error else "yellow", err=False)
        warnings = len(problems) - len([p for p in problems if p.is_error])
        if errors:
            click.secho(f"{target}: {len(errors)} error(s), {warnings} warning(s)", fg="red", err=True)
        else:
            click.secho(f"{target}: valid {kind} plugin" + (f" ({warnings} warning(s))" if warnings else ""),
                        fg="green", err=True)
    if errors:
        raise SystemExit(1)


@click.command()
@click.option("--kind", type=click.Choice(sorted(KINDS)), help="One YAML kind; all kinds when omitted.")
def schema(kind: str | None) -> None:
    """Print the JSON Schema of each YAML kind (for editor completion and checks)."""
    if kind:
        click.echo(json.dumps(KINDS[kind].model_json_schema(by_alias=True), indent=2))
    else:
        click.echo(json.dumps({k: m.model_json_schema(by_alias=True) for k, m in sorted(KINDS.items())}, indent=2))


def _checked(check: Callable[[str], str]) -> Callable[[str], str]:
    """A prompt's answer checked as it is given: click says what is wrong and asks again."""
    def proc(value: str) -> str:
        try:
            return check(str(value).strip())
        except PlugdockError as exc:
            raise click.BadParameter(str(exc)) from None
    return proc


def _free_text(value: str) -> str:
    if not value.strip():
        raise PlugdockError("a description is needed (one line)")
    return value.strip()


@click.command()
@click.argument("directory", type=click.Path(path_type=Path), required=False)
@click.option("--kind", type=click.Choice(TEMPLATE_KINDS), help="Plugin kind.")
@click.option("--name", help="Plugin name: lowercase letters, digits, _ and -.")
@click.option("--author", help="Author id: lowercase letters, digits, _ and -.")
@click.option("--description", help="One-line description.")
@click.option("--tool", "tool_name", help=f"For tool plugins: the tool's name (default {DEFAULT_TOOL!r}, the "
                                          "scaffold's tool echoes its text).")
@click.option("--repo", help="Source repository URL for the Marketplace (default https://github.com/AUTHOR/NAME).")
@click.option("--contact", help="Contact email for the Marketplace (default AUTHOR@users.noreply.github.com).")
@click.option("--model-method", type=click.Choice(["predefined", "customizable"]), default=None,
              help="For model plugins: predefined models or customizable models.")
@click.option("--yes", "-y", "non_interactive", is_flag=True, help="Never prompt; use defaults for what is missing.")
@click.option("--force", is_flag=True, help="Write into a directory that is not empty.")
def init(directory: Path | None, kind: str | None, name: str | None, author: str | None, description: str | None,
         tool_name: str | None, repo: str | None, contact: str | None, model_method: str | None,
         non_interactive: bool, force: bool) -> None:
    """Create a new plugin of any kind that validates, runs and has a passing test (tests/, run with pytest)."""
    ask = not non_interactive
    if directory is not None and directory.exists() and any(directory.iterdir()) and not force:
        raise PlugdockError(f"{directory} is not empty; choose another directory or pass --force")

    def value(current: str | None, prompt: str, default: str, check: Callable[[str], str]) -> str:
        if current:
            return check(current)  # given on the command line: wrong is an error now, before any question
        return str(click.prompt(prompt, default=default, value_proc=_checked(check))) if ask else check(default)

    kind = kind or (click.prompt("Plugin kind", type=click.Choice(TEMPLATE_KINDS), default="tool") if ask else "tool")
    name = value(name, "Plugin name", directory.name if directory else f"my_{kind.replace('-', '_')}", check_name)
    author = value(author, "Author", "me", check_author)
    description = value(description, "Description", f"A {kind} plugin.", _free_text)
    tool = value(tool_name, "Tool name", DEFAULT_TOOL, check_tool) if kind == "tool" else ""
    if kind == "model" and not model_method:
        model_method = click.prompt("Models", type=click.Choice(["predefined", "customizable"]),
                                    default="predefined") if ask else "predefined"
    publishing = kind != "bundle"
    repo = value(repo, "Source repository", f"https://github.com/{author}/{name}", check_repo) if publishing else ""
    contact = value(contact, "Contact email", f"{author}@users.noreply.github.com", check_contact) \
        if publishing else ""
    answers = PluginAnswers(kind=kind, name=name, author=author, description=description,
                            model_method=model_method or "predefined", tool=tool, repo=repo, contact=contact)
    answers.check()
    target = directory or Path(name)
    if target.exists() and any(target.iterdir()) and not force:
        raise PlugdockError(f"{target} is not empty; choose another directory or pass --force")
    written = render_plugin(answers, target)
    click.secho(f"created {kind} plugin {author}/{name} in {target} ({len(written)} files)", fg="green")
    click.echo(f"next: plugdock validate {target}")
    if tool:
        click.echo(f"      plugdock invoke {target} tool {tool} -p text=hi")
    if kind != "bundle":
        click.echo(f"      cd {target} && python -m pytest tests")


COMMANDS = [validate, schema, init]
