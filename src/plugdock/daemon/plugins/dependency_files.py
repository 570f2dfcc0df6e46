"""What an installed plugin depends on, read as requirement lines from whichever file the package has.

``requirements.txt`` when there is one. A package with only ``pyproject.toml`` (the official daemon then runs
``uv sync --no-dev``, with ``--frozen`` when ``uv.lock`` exists) gives its locked set when it has a lock,
exported by ``uv export --frozen`` — offline, reading the lock and nothing else, with every hash — and otherwise
``project.dependencies``, with ``[tool.uv.sources]`` paths to wheels inside the package as hash-pinned lines.
Either way the result goes through the same requirements policy as a ``requirements.txt``; one difference from
the official daemon, which prefers ``pyproject.toml`` when both exist: plugdock takes ``requirements.txt`` then,
which every package built by the official or plugdock's packager carries.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement

from plugdock.daemon.plugins.requirements_policy import (
    FILE_NAME,
    MAX_SIZE,
    RequirementsRefused,
    read_requirements,
)
from plugdock.packaging.uv import uv_command

EXPORT = ["export", "--frozen", "--format", "requirements.txt", "--no-dev", "--no-emit-project", "--no-header",
          "--no-annotate"]
EXPORT_TIMEOUT = 60


@dataclass(frozen=True)
class Dependencies:
    source: bytes  # requirement lines for the policy
    origin: str  # the file they come from, for progress

    @property
    def label(self) -> str:
        """How the policy's errors name a line: the file itself, or what was derived from it."""
        return {"uv.lock": "uv.lock (exported requirements)", "pyproject.toml": "pyproject.toml (dependencies)"
                }.get(self.origin, self.origin)


def read_dependencies(plugin_dir: Path) -> Dependencies:
    """The plugin's requirement lines, and which file gave them (``requirements.txt`` when nothing does)."""
    if (plugin_dir / FILE_NAME).exists() or (plugin_dir / FILE_NAME).is_symlink():
        return Dependencies(read_requirements(plugin_dir), FILE_NAME)
    project = plugin_dir / "pyproject.toml"
    if not project.is_file() or project.is_symlink():
        return Dependencies(b"", FILE_NAME)
    if (plugin_dir / "uv.lock").is_file() and not (plugin_dir / "uv.lock").is_symlink():
        return Dependencies(_export_lock(plugin_dir), "uv.lock")
    return Dependencies(_project_lines(plugin_dir, project), "pyproject.toml")


def _export_lock(plugin_dir: Path) -> bytes:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
    env.update(UV_OFFLINE="1", UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1")
    try:
        done = subprocess.run([*uv_command(), *EXPORT], cwd=plugin_dir, env=env, capture_output=True,
                              timeout=EXPORT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise RequirementsRefused(f"uv.lock: `uv export` did not finish within {EXPORT_TIMEOUT} s") from None
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        last = reason[-1] if reason else f"exit code {done.returncode}"
        raise RequirementsRefused(f"uv.lock: cannot be read as a lock of pyproject.toml ({last})")
    if len(done.stdout) > MAX_SIZE:
        raise RequirementsRefused(f"uv.lock: exports {len(done.stdout)} bytes of requirements, over the limit of "
                                  f"{MAX_SIZE}")
    return done.stdout


def _project_lines(plugin_dir: Path, project: Path) -> bytes:
    if project.stat().st_size > MAX_SIZE:
        raise RequirementsRefused(f"pyproject.toml is {project.stat().st_size} bytes, over the limit of {MAX_SIZE}")
    try:
        data = tomllib.loads(project.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RequirementsRefused(f"pyproject.toml: not valid TOML ({exc})") from None
    declared = data.get("project", {}).get("dependencies", []) if isinstance(data.get("project"), dict) else []
    sources = data.get("tool", {}).get("uv", {}).get("sources", {}) if isinstance(data.get("tool"), dict) else {}
    if not isinstance(declared, list) or not isinstance(sources, dict):
        raise RequirementsRefused("pyproject.toml: project.dependencies must be a list, tool.uv.sources a table")
    lines = []
    for text in declared:
        try:
            requirement = Requirement(str(text))
        except InvalidRequirement as exc:
            raise RequirementsRefused(f"pyproject.toml: project.dependencies: {text!r} is not a requirement "
                                      f"({exc})") from None
        source = sources.get(requirement.name)
        if isinstance(source, dict) and isinstance(source.get("path"), str):
            lines.append(_path_line(plugin_dir, requirement, source["path"]))
        elif source is not None:
            raise RequirementsRefused(f"pyproject.toml: tool.uv.sources.{requirement.name}: only a path to a wheel "
                                      "inside the package is accepted (git, URL and index sources are not)")
        else:
            lines.append(str(requirement))
    return ("\n".join(lines) + "\n").encode() if lines else b""


def _path_line(plugin_dir: Path, requirement: Requirement, path: str) -> str:
    """``name @ ./path --hash=…`` for a wheel the package carries: its bytes are covered by the package's checksum,
    so pinning the hash read here lets the policy treat it as any shipped wheel (it still checks the path)."""
    relative = PurePosixPath(path)
    target = plugin_dir / relative
    digest = ""
    if not relative.is_absolute() and ".." not in relative.parts and target.is_file() and not target.is_symlink():
        digest = f" --hash=sha256:{hashlib.sha256(target.read_bytes()).hexdigest()}"
    marker = f" ; {requirement.marker}" if requirement.marker else ""
    return f"{requirement.name} @ ./{relative.as_posix().removeprefix('./')}{marker}{digest}"
