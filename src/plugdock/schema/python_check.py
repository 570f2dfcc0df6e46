"""Check that a plugin's Python files parse, with the Python the plugin asks for.

A plugin written for Python 3.12 may use its syntax (PEP 701 f-strings: tools/attio in the official catalogue),
which the 3.11 that plugdock may run on refuses, and a 3.13 host accepts syntax a 3.11 plugin cannot run. So
the files are parsed by an interpreter of ``meta.runner.version`` when the host's own is another version and
one is found (PATH, pyenv, then uv-managed Pythons, the places the daemon builds environments from), in a
subprocess that only runs ``ast.parse``. When none is found, the host parses: what an older host cannot parse
is a warning, since the official daemon runs the plugin with the version it asks for.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from plugdock.schema.problems import Problem

MAX_SOURCE_BYTES = 4 * 1024 * 1024
PARSE_TIMEOUT = 120.0

_PARSER = """
import ast, base64, json, sys
out = []
for path, data in json.load(sys.stdin).items():
    try:
        ast.parse(base64.b64decode(data), filename=path)
    except SyntaxError as exc:
        out.append([path, exc.lineno or 1, exc.offset or 1, "Python syntax error: " + str(exc.msg)])
    except ValueError as exc:
        out.append([path, 1, 1, "Python source cannot be read: " + str(exc)])
json.dump(out, sys.stdout)
"""

_found: dict[tuple[int, int], str | None] = {}


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version[:2])


def host_version() -> tuple[int, int]:
    """The Python parsing in this process (a function, so tests can stand in an older one)."""
    return sys.version_info[0], sys.version_info[1]


def wanted_version(runner_version: str) -> tuple[int, int] | None:
    """``"3.12"`` (or ``3.12.4``) as ``(3, 12)``; None when it names no Python 3 version."""
    parts = runner_version.strip().split(".")
    try:
        version = (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError):
        return None
    return version if version[0] == 3 else None


def _output(argv: list[str], stdin: str = "", timeout: float = 30.0) -> str | None:
    """What ``argv`` prints when it succeeds, else None (not found, failed or over ``timeout``)."""
    try:
        with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True) as proc:
            try:
                out, _ = proc.communicate(stdin, timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                return None
    except OSError:
        return None
    return out if proc.returncode == 0 else None


def _reports(candidate: str, version: tuple[int, int]) -> bool:
    out = _output([candidate, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
    return out is not None and out.strip() == _dotted(version)


def find_python(version: tuple[int, int]) -> str | None:
    """A CPython ``version`` on this machine, or None; remembered for the process."""
    if version in _found and (_found[version] is None or os.path.exists(_found[version] or "")):
        return _found[version]
    name = _dotted(version)

    def candidates() -> Iterator[str]:
        on_path = shutil.which(f"python{name}")
        if on_path and "/shims/" not in on_path:
            yield on_path
        pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
        yield from (str(p) for p in sorted(pyenv.glob(f"versions/{name}.*/bin/python{name}"), reverse=True))
        uv = os.environ.get("UV_PATH") or shutil.which("uv")
        found = _output([uv, "python", "find", "--no-project", name]) if uv else None
        if found and found.strip():
            yield found.strip()

    _found[version] = next((c for c in candidates() if _reports(c, version)), None)
    return _found[version]


def _parse_here(sources: dict[str, bytes]) -> list[Problem]:
    problems = []
    for path, data in sources.items():
        try:
            ast.parse(data, filename=path)
        except SyntaxError as exc:
            problems.append(Problem(path, exc.lineno or 1, exc.offset or 1, "", f"Python syntax error: {exc.msg}"))
        except ValueError as exc:
            problems.append(Problem(path, 1, 1, "", f"Python source cannot be read: {exc}"))
    return problems


def _parse_with(interpreter: str, sources: dict[str, bytes]) -> list[Problem] | None:
    """Parse in ``interpreter`` (isolated, no site: nothing of the plugin or the host is imported)."""
    payload = json.dumps({p: base64.b64encode(d).decode() for p, d in sources.items()})
    out = _output([interpreter, "-I", "-S", "-c", _PARSER], payload, PARSE_TIMEOUT)
    try:
        rows = json.loads(out) if out is not None else None
    except ValueError:
        return None
    if not isinstance(rows, list):
        return None
    return [Problem(str(path), int(line), int(col), "", str(msg)) for path, line, col, msg in rows]


def check_sources(sources: dict[str, bytes], runner_version: str) -> list[Problem]:
    """Problems of the plugin's Python files: over the size limit, or not parseable by the Python it asks for."""
    problems = [Problem(p, 1, 1, "", f"source is over the {MAX_SOURCE_BYTES}-byte limit")
                for p, d in sources.items() if len(d) > MAX_SOURCE_BYTES]
    sources = {p: d for p, d in sources.items() if len(d) <= MAX_SOURCE_BYTES}
    wanted = wanted_version(runner_version)
    here = host_version()
    if not sources or wanted is None or wanted == here:
        return problems + _parse_here(sources)
    interpreter = find_python(wanted)
    parsed = _parse_with(interpreter, sources) if interpreter else None
    if parsed is not None:
        return problems + parsed
    if wanted < here:  # a newer parser is the best stand-in for an older one: what it refuses, 3.x refuses too
        return problems + _parse_here(sources)
    name, host = _dotted(wanted), _dotted(here)
    return problems + [
        Problem(p.file, p.line, p.column, "", f"{p.message} under Python {host}; the plugin asks for Python {name} "
                "(meta.runner.version), which the official daemon runs it with, and none was found here to check "
                "with", severity="warning")
        for p in _parse_here(sources)
    ]
