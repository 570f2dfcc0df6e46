"""Files that ``plugdock init`` writes for each plugin kind.

The files themselves live under ``plugdock/cli/scaffolds/`` (package data) as real YAML, Python and
Markdown, so they can be read, linted and type-checked like any plugin code. This module only picks
the layers for the answers and fills the placeholders.

Placeholders are ``__UPPER_CASE__`` words: valid in Python identifiers (``class __CLASS__Tool``),
plain YAML scalars and file names, and never a Python dunder (those are lower case). Substitution is
a single pass, so an answer containing a placeholder is written as typed. In ``.yaml`` files a value
is escaped for a double-quoted YAML string (write free text as ``"__DESCRIPTION__"``); in ``.py``
files only identifier-safe values are allowed, so no answer can turn into code.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from plugdock.errors import PlugdockError
from plugdock.publishing.checks import EMAIL_RE, SOURCE_REPOSITORY_RE
from plugdock.publishing.icon import plugin_icon_svg
from plugdock.schema.common import AUTHOR_RE, PLUGIN_NAME_RE

KINDS = ["tool", "model", "extension", "agent-strategy", "bundle", "datasource", "trigger"]

PLACEHOLDER = re.compile(r"__([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)__")
PYTHON_SAFE = frozenset({"NAME", "AUTHOR", "CLASS", "TOOL", "TOOL_CLASS"})
"""Placeholders allowed in ``.py`` files: their values match ``[A-Za-z0-9_-]`` (checked answers)."""


TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
DEFAULT_TOOL = "echo"
"""What ``plugdock init`` names the scaffold's tool (it echoes its text): a tool is named for what it does."""


def check_name(value: str) -> str:
    if not PLUGIN_NAME_RE.match(value):
        raise PlugdockError(f"name {value!r} must match ^[a-z0-9_-]{{1,128}}$ (lowercase letters, digits, _ and -)")
    return value


def check_author(value: str) -> str:
    if not AUTHOR_RE.match(value):
        raise PlugdockError(f"author {value!r} must match ^[a-z0-9_-]{{1,64}}$ (lowercase letters, digits, _ and -)")
    return value


def check_tool(value: str) -> str:
    if not TOOL_NAME_RE.match(value):
        raise PlugdockError(f"tool name {value!r} must match ^[a-zA-Z0-9_-]{{1,128}}$ (letters, digits, _ and -)")
    return value


def check_repo(value: str) -> str:
    if not SOURCE_REPOSITORY_RE.fullmatch(value):
        raise PlugdockError(f"repo {value!r} must be a source repository URL (https://github.com/OWNER/NAME, GitLab, "
                            "Bitbucket, Gitee, Codeberg or sourcehut), as the Marketplace asks")
    return value


def check_contact(value: str) -> str:
    if not EMAIL_RE.match(value):
        raise PlugdockError(f"contact {value!r} must be an email address")
    return value


@dataclass
class PluginAnswers:
    kind: str
    name: str
    author: str
    description: str
    model_method: str = "predefined"
    tool: str = ""
    """The tool kind's tool; empty: named like the plugin (what scaffolds did before ``init`` asked)."""
    repo: str = ""
    """The source repository the Marketplace asks for; empty: https://github.com/<author>/<name>."""
    contact: str = ""
    """The author's email the Marketplace asks for; empty: <author>@users.noreply.github.com."""

    def check(self) -> None:
        if self.kind not in KINDS:
            raise PlugdockError(f"kind {self.kind!r} must be one of {', '.join(KINDS)}")
        check_name(self.name)
        check_author(self.author)
        if self.tool:
            check_tool(self.tool)
        if self.model_method not in ("predefined", "customizable"):
            raise PlugdockError("model method must be predefined or customizable")
        if self.repo:
            check_repo(self.repo)
        if self.contact:
            check_contact(self.contact)

    @property
    def source_repository(self) -> str:
        return self.repo or f"https://github.com/{self.author}/{self.name}"

    @property
    def contact_email(self) -> str:
        return self.contact or f"{self.author}@users.noreply.github.com"


def layers(answers: PluginAnswers) -> list[str]:
    """Scaffold folders for the answers, in order; a later layer's file replaces an earlier one's."""
    if answers.kind == "bundle":
        return ["all", "bundle"]
    extra = [f"model-{answers.model_method}"] if answers.kind == "model" else []
    return ["all", "plugin", answers.kind, *extra]


def _yaml_escape(text: str) -> str:
    """Escape free text for the inside of a double-quoted YAML scalar."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def fill(text: str, values: dict[str, str], path: str, *, name: bool = False) -> str:
    """Replace every placeholder of a template's text (or, with ``name``, of its file name, raw).

    An unknown placeholder is a bug in the template, not in the answers.
    """
    escape = _yaml_escape if path.endswith((".yaml", ".yml")) and not name else str

    def one(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise PlugdockError(f"scaffold {path}: unknown placeholder {match.group(0)}")
        if path.endswith(".py") and not name and key not in PYTHON_SAFE:
            raise PlugdockError(f"scaffold {path}: {match.group(0)} is not allowed in Python code")
        return escape(values[key])

    return PLACEHOLDER.sub(one, text)


def _walk(folder: Traversable, prefix: str = "") -> dict[str, str]:
    """Relative path -> text of every template file under a scaffold folder (bytecode left out)."""
    found: dict[str, str] = {}
    for entry in folder.iterdir():
        if entry.name == "__pycache__" or entry.name.endswith(".pyc"):
            continue
        rel = prefix + entry.name
        if entry.is_dir():
            found.update(_walk(entry, rel + "/"))
        else:
            found[rel] = entry.read_bytes().decode("utf-8")
    return found


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_")) or "My"


def plugin_files(answers: PluginAnswers, now: dt.datetime | None = None) -> dict[str, str]:
    """Path -> text of every file of the new plugin."""
    label = answers.name.replace("_", " ").replace("-", " ").title()
    tool = answers.tool or answers.name
    values = {
        "NAME": answers.name,
        "AUTHOR": answers.author,
        "LABEL": label,
        "DESCRIPTION": answers.description,
        "CLASS": _class_name(answers.name),
        "TOOL": tool,
        "TOOL_LABEL": tool.replace("_", " ").replace("-", " ").title(),
        "TOOL_CLASS": _class_name(tool),
        "CREATED_AT": (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    root = files("plugdock.cli").joinpath("scaffolds")
    templates: dict[str, str] = {}
    for layer in layers(answers):
        templates.update(_walk(root.joinpath(layer)))
    return {fill(path, values, path, name=True): fill(text, values, path) for path, text in templates.items()}


def ready_to_publish(answers: PluginAnswers, rendered: dict[str, str]) -> dict[str, str]:
    """What the Marketplace's checks (``plugdock publish check``) ask beyond the templates: the source repository
    and a contact in the manifest, the repository named in the README, and an icon of the plugin's own."""
    if answers.kind == "bundle":
        return rendered
    done = dict(rendered)
    done["manifest.yaml"] = (rendered["manifest.yaml"].rstrip("\n") + f"\nrepo: {answers.source_repository}\n"
                             f"contact: {answers.contact_email}\n")
    done["README.md"] = rendered["README.md"].rstrip("\n") + f"\n\nSource: {answers.source_repository}\n"
    done["_assets/icon.svg"] = plugin_icon_svg(answers.author, answers.name)
    return done


def render_plugin(answers: PluginAnswers, target: Path) -> list[Path]:
    """Write the new plugin's files under ``target`` (templates, then the publishing details); returns them in
    path order."""
    written = []
    for rel, text in sorted(ready_to_publish(answers, plugin_files(answers)).items()):
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
