"""What ``plugdock port`` changes: the imports, and the dependency files that must agree with them.

Rewriting only the imports left a ported plugin depending on ``dify_plugin`` in ``pyproject.toml`` and ``uv.lock``:
it packaged, installed, and failed at the first call with ``No module named 'plugdock'``. So the port plans every
change first (Python files, ``requirements.txt``, ``pyproject.toml``'s dependencies, ``uv.lock`` re-locked by uv or
dropped with a warning when uv cannot lock), and ``--dry-run`` prints the plan as a unified diff.
"""

from __future__ import annotations

import difflib
import functools
import re
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from plugdock.errors import PlugdockError
from plugdock.packaging.uv import uv_binary, uv_environment, uv_failure

PLUGDOCK_REQUIREMENT = "plugdock>=0.1"
OFFICIAL_REQUIREMENT = "dify_plugin>=0.10,<0.11"  # the official SDK the conformance and daemon tests run
_NAMES = {"plugdock": {"dify-plugin"}, "dify": {"plugdock", "plugdock-sdk"}}  # what each direction replaces
_WANTED = {"plugdock": PLUGDOCK_REQUIREMENT, "dify": OFFICIAL_REQUIREMENT}
_SKIPPED = (".venv", "venv", "__pycache__", ".git")
LOCK_TIMEOUT = 180.0


@dataclass
class Change:
    """One file of the plugin: its text before and after (``None`` after: removed)."""

    path: str
    old: str
    new: str | None
    why: str = ""

    def diff(self) -> str:
        if self.new is None:
            return (f"--- a/{self.path}\n+++ /dev/null\n@@ -1,{len(self.old.splitlines())} +0,0 @@ "
                    f"(removed: {self.why})\n")
        return "".join(difflib.unified_diff(self.old.splitlines(keepends=True), self.new.splitlines(keepends=True),
                                            f"a/{self.path}", f"b/{self.path}"))


@dataclass
class Plan:
    changes: list[Change]
    notes: list[str]


def _replaced(text: str, to: str) -> bool:
    """Does this requirement name the SDK the port moves away from?"""
    try:
        return canonicalize_name(Requirement(re.split(r"\s--?[a-zA-Z]|;", text)[0].strip()).name) in _NAMES[to]
    except InvalidRequirement:
        return False


def port_requirements(text: str, to: str = "plugdock") -> str:
    """``dify_plugin…`` lines become ``plugdock>=0.1`` (``--to dify``: the other way; markers and comments kept);
    the rest is left as written."""
    out = []
    for line in text.splitlines():
        body, _, comment = line.partition("#")
        if _replaced(body.strip(), to):
            marker = body.split(";", 1)[1].strip() if ";" in body else ""
            line = _WANTED[to] + (f"; {marker}" if marker else "") + (f"  #{comment}" if comment else "")
        out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") or out else "")


def port_pyproject(text: str, to: str = "plugdock") -> str:
    """``project.dependencies`` naming dify_plugin name plugdock instead (or back), edited in place (layout kept)."""
    try:
        project = tomllib.loads(text).get("project", {})
    except tomllib.TOMLDecodeError as exc:
        raise PlugdockError(f"pyproject.toml: not valid TOML: {exc}") from exc
    dependencies = project.get("dependencies", []) if isinstance(project, dict) else []
    start = re.search(r"(?m)^\s*dependencies\s*=\s*\[", text)
    if start is None:
        return text
    head, tail = text[: start.end()], text[start.end():]
    for dependency in dependencies:
        if isinstance(dependency, str) and _replaced(dependency, to):
            marker = dependency.split(";", 1)[1].strip() if ";" in dependency else ""
            wanted = _WANTED[to] + (f"; {marker}" if marker else "")
            quoted = re.compile(r"([\"'])" + re.escape(dependency) + r"\1")
            tail = quoted.sub(functools.partial(_quote_like, wanted), tail, count=1)
    return head + tail


def _quote_like(text: str, match: re.Match[str]) -> str:
    return match.group(1) + text + match.group(1)


def relock(pyproject: str, lock: str) -> tuple[str | None, str]:
    """(the new uv.lock, "") from ``uv lock`` on the ported pyproject.toml, or (None, why uv could not lock)."""
    uv = uv_binary()
    if not uv:
        return None, "uv is not installed"
    env = uv_environment(pyproject.encode("utf-8"))
    with tempfile.TemporaryDirectory(prefix="plugdock-port-") as tmp:
        Path(tmp, "pyproject.toml").write_text(pyproject, encoding="utf-8")
        Path(tmp, "uv.lock").write_text(lock, encoding="utf-8")
        try:
            proc = subprocess.run([uv, "lock", "--quiet"], cwd=tmp, env=env, capture_output=True, text=True,
                                  timeout=LOCK_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"`uv lock` did not finish: {exc}"
        if proc.returncode != 0:
            return None, f"`uv lock` failed: {uv_failure(proc.stderr)}"
        return Path(tmp, "uv.lock").read_text(encoding="utf-8"), ""


def plan_port(directory: Path, target: str) -> Plan:
    """Every change ``plugdock port`` would make to the plugin at ``directory``, nothing written."""
    from plugdock.sdk.compat import port_source

    if not (directory / "manifest.yaml").is_file():  # a wrong folder would "port" its stray .py files
        raise PlugdockError(f"{directory} holds no manifest.yaml: name the plugin folder (the one with "
                            "manifest.yaml) to port")
    changes: list[Change] = []
    notes: list[str] = []
    for path in sorted(directory.rglob("*.py")):
        rel = path.relative_to(directory)
        if any(part in _SKIPPED for part in rel.parts):
            continue
        text = path.read_text(encoding="utf-8")
        try:
            new, found = port_source(text, to=target)
        except SyntaxError as exc:
            raise PlugdockError(f"{path}:{exc.lineno}: cannot parse: {exc.msg}") from exc
        notes += [f"{rel.as_posix()}: {note}" for note in found]
        if new != text:
            changes.append(Change(rel.as_posix(), text, new))
    changes += _dependency_changes(directory, target, notes)
    return Plan(changes, notes)


def _dependency_changes(directory: Path, to: str, notes: list[str]) -> list[Change]:
    changes = []
    requirements = directory / "requirements.txt"
    if requirements.is_file():
        text = requirements.read_text(encoding="utf-8")
        if (new := port_requirements(text, to)) != text:
            changes.append(Change("requirements.txt", text, new))
    pyproject = directory / "pyproject.toml"
    if not pyproject.is_file():
        return changes
    text = pyproject.read_text(encoding="utf-8")
    new = port_pyproject(text, to)
    if new == text:
        return changes
    changes.append(Change("pyproject.toml", text, new))
    lock = directory / "uv.lock"
    if lock.is_file():
        old_lock = lock.read_text(encoding="utf-8")
        locked, why = relock(new, old_lock)
        if locked is None:
            reason = (f"{why}; it still locks dify_plugin, and `uv sync --frozen` would install that, not "
                      "plugdock. plugdock is not on an index yet, and `plugdock package` ships it inside the package, "
                      "so pyproject.toml alone installs; run `uv lock` yourself once plugdock resolves"
                      if to == "plugdock" else f"{why}; it locked plugdock; run `uv lock` where the index is reachable")
            notes.append(f"uv.lock: removed: {reason}")
            changes.append(Change("uv.lock", old_lock, None, why))
        elif locked != old_lock:
            changes.append(Change("uv.lock", old_lock, locked))
    return changes


def apply(directory: Path, plan: Plan) -> None:
    for change in plan.changes:
        path = directory / change.path
        if change.new is None:
            path.unlink()
        else:
            path.write_text(change.new, encoding="utf-8")
