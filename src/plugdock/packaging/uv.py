"""The one place that finds ``uv``: the packager's ``uv export`` and the daemon's environment builds both use it.

``UV_PATH`` first, then the ``uv`` package's own binary (``plugdock[daemon]`` installs it), then ``uv`` on
PATH, and last ``python -m uv``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tomllib

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from plugdock.schema.python_check import find_python, host_version

# The Pythons plugdock looks for to run a project's uv commands, newest first after the host's own.
CANDIDATE_VERSIONS = ((3, 13), (3, 12), (3, 11))


def uv_binary() -> str | None:
    """The uv executable itself, links resolved (a shim on PATH may need its owner's home), or None."""
    explicit = os.environ.get("UV_PATH")
    if explicit:
        return os.path.realpath(explicit)
    try:
        from uv import find_uv_bin

        return os.path.realpath(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        return os.path.realpath(found) if found else None


def uv_command() -> list[str]:
    """The command line that runs uv here: its binary, else ``python -m uv`` (which fails by name if missing)."""
    binary = uv_binary()
    return [binary] if binary else [sys.executable, "-m", "uv"]


def uv_environment(pyproject: bytes | None = None, **extra: str) -> dict[str, str]:
    """The environment plugdock runs uv in: no interpreter downloads, no progress bars, and ``UV_PYTHON`` set to
    an interpreter that satisfies the project's ``requires-python``, found as ``validate`` finds one (PATH,
    pyenv's versions, uv's). uv's own search takes the first ``python3.12`` on PATH, which on a pyenv machine
    is a shim that fails unless that version is pyenv's global one; an operator's ``UV_PYTHON`` is kept."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1", **extra}
    if "UV_PYTHON" not in env:
        python = _project_python(pyproject)
        if python:
            env["UV_PYTHON"] = python
    return env


def _project_python(pyproject: bytes | None) -> str | None:
    wanted = SpecifierSet()
    if pyproject is not None:
        try:
            project = tomllib.loads(pyproject.decode("utf-8", "replace")).get("project", {})
            wanted = SpecifierSet(str(project.get("requires-python") or "")) if isinstance(project, dict) else wanted
        except (tomllib.TOMLDecodeError, InvalidSpecifier):
            pass
    for version in dict.fromkeys((host_version(), *CANDIDATE_VERSIONS)):
        if wanted.contains(f"{version[0]}.{version[1]}.0", prereleases=True) or wanted.contains(
                f"{version[0]}.{version[1]}.99", prereleases=True):
            found = sys.executable if version == host_version() else find_python(version)
            if found:
                return found
    return None


def uv_failure(stderr: str) -> str:
    """uv's first ``error:`` line and its ``cause:`` lines: what went wrong, without the rest of its output."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    picked = [re.sub(r"^(error|×):?\s*", "", line, flags=re.I) for line in lines
              if line.lower().startswith(("error", "×", "cause:", "caused by:"))]
    return "; ".join(picked[:4])[:600] or (lines[-1][:300] if lines else "no output")
