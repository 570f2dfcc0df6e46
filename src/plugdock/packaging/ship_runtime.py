"""Point a package's dependency files at the ``plugdock-sdk`` wheel it carries, so it installs with no index.

Both ways the official daemon installs a plugin must find plugdock inside the package:
``uv pip install -r requirements.txt`` run in the plugin folder reads a line relative to it, pinned by hash; and
``uv sync --no-dev [--frozen]`` (preferred when ``pyproject.toml`` exists) reads ``[tool.uv.sources]``, whose
``uv.lock`` pins the wheel's hash. The plugin folder itself is never changed: only the packaged copies are.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from plugdock.errors import PackageError
from plugdock.packaging.runtime_wheel import DISTRIBUTION, WHEEL_FOLDER, RuntimeWheel, build_runtime_wheel
from plugdock.packaging.uv import uv_binary, uv_environment, uv_failure

NAMES = ("plugdock", DISTRIBUTION)  # what an author may write for plugdock in a dependency list
_SHIPPED = re.compile(r"(^|[\s/@:])(\./)?" + re.escape(WHEEL_FOLDER) + r"/plugdock_sdk-[^/\s]*\.whl")
_OPTION = re.compile(r"\s--?[a-zA-Z]")


def ship_runtime(files: list[tuple[str, bytes]], wheel: RuntimeWheel | None = None) -> list[tuple[str, bytes]]:
    """``files`` with plugdock's dependency lines pointed at the shipped wheel, plus the wheel, when any names it."""
    contents = dict(files)
    if not any(_names_plugdock(contents.get(name, b""), name) for name in ("requirements.txt", "pyproject.toml")):
        return files
    wheel = wheel or build_runtime_wheel()
    if "pyproject.toml" in contents and _names_plugdock(contents["pyproject.toml"], "pyproject.toml"):
        contents.update(_rewrite_project(contents, wheel))
    if "requirements.txt" in contents:
        contents["requirements.txt"] = rewrite_requirements(contents["requirements.txt"], wheel)
    for stale in [name for name in contents if name.startswith(f"{WHEEL_FOLDER}/plugdock_sdk-")]:
        del contents[stale]  # an older copy the folder kept: only the wheel the lines name goes in
    contents[wheel.package_path] = wheel.data
    return sorted(contents.items())


def _names_plugdock(content: bytes, name: str) -> bool:
    if not content:
        return False
    if name == "pyproject.toml":
        return bool(_project_lines(content))
    return any(_plugdock_requirement(line) is not None or _SHIPPED.search(line)
               for line in content.decode("utf-8", "replace").splitlines())


def _requirement(line: str) -> Requirement | None:
    """The PEP 508 requirement on a requirements.txt line (options and comment left out), if there is one."""
    text = line.split("#", 1)[0].strip()
    if not text or text.startswith("-"):
        return None
    match = _OPTION.search(text)
    try:
        return Requirement(text[: match.start()] if match else text)
    except InvalidRequirement:
        return None


def _plugdock_requirement(line: str) -> Requirement | None:
    """The requirement on this requirements.txt line if it names plugdock (from an index), else None."""
    requirement = _requirement(line)
    if requirement is None or requirement.url is not None:
        return None
    return requirement if canonicalize_name(requirement.name) in NAMES else None


def _check_version(requirement: Requirement, wheel: RuntimeWheel, where: str) -> None:
    version = wheel.filename.split("-")[1]
    if requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
        raise PackageError(f"{where}: the plugin asks for {requirement}, and this plugdock, which the package would "
                           f"carry, is {version}; install a plugdock that matches, or change the requirement")


def rewrite_requirements(content: bytes, wheel: RuntimeWheel) -> bytes:
    """Each line naming plugdock (``plugdock>=0.1``, ``plugdock-sdk``, or an earlier shipped wheel) becomes the line
    for this wheel; the rest is left as written."""
    out = []
    for number, line in enumerate(content.decode("utf-8").splitlines(), start=1):
        requirement = _plugdock_requirement(line)
        if requirement is not None:
            _check_version(requirement, wheel, f"requirements.txt:{number}")
            out.append(wheel.requirement_line(str(requirement.marker or "")))
        elif _SHIPPED.search(line.split("#", 1)[0]):
            shipped = _requirement(line)
            out.append(wheel.requirement_line(str(shipped.marker or "") if shipped is not None else ""))
        else:
            out.append(line)
    return ("\n".join(out) + "\n").encode()


def _project_lines(content: bytes) -> list[Requirement]:
    try:
        project = tomllib.loads(content.decode("utf-8")).get("project", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PackageError(f"pyproject.toml: not valid TOML: {exc}") from exc
    found = []
    for text in project.get("dependencies", []) if isinstance(project, dict) else []:
        try:
            requirement = Requirement(str(text))
        except InvalidRequirement:
            continue
        if canonicalize_name(requirement.name) in NAMES:
            found.append(requirement)
    return found


def _rewrite_project(contents: dict[str, bytes], wheel: RuntimeWheel) -> dict[str, bytes]:
    """pyproject.toml (and uv.lock, re-locked, when the plugin has one) depending on the shipped wheel, by uv itself."""
    for requirement in _project_lines(contents["pyproject.toml"]):
        _check_version(requirement, wheel, "pyproject.toml: project.dependencies")
    uv = uv_binary()
    if not uv:
        raise PackageError("the plugin's pyproject.toml depends on plugdock; plugdock points it at the wheel the "
                           "package carries with uv: install uv (pip install uv)")
    locked = "uv.lock" in contents
    env = uv_environment(contents["pyproject.toml"])
    with tempfile.TemporaryDirectory(prefix="plugdock-ship-") as tmp:
        work = Path(tmp)
        for name in ("pyproject.toml", "uv.lock"):
            if name in contents:
                (work / name).write_bytes(contents[name])
        (work / WHEEL_FOLDER).mkdir()
        (work / wheel.package_path).write_bytes(wheel.data)
        names = {canonicalize_name(r.name) for r in _project_lines(contents["pyproject.toml"])}
        steps = [[uv, "remove", "--frozen", *sorted(names)],
                 [uv, "add", "--no-sync" if locked else "--frozen", f"./{wheel.package_path}"]]
        for cmd in steps:
            proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise PackageError(f"pyproject.toml: `uv {' '.join(cmd[1:3])}` failed while pointing plugdock at the "
                                   f"shipped wheel: {uv_failure(proc.stderr)}")
        result = {"pyproject.toml": (work / "pyproject.toml").read_bytes()}
        if locked:
            result["uv.lock"] = (work / "uv.lock").read_bytes()
        shutil.rmtree(work / WHEEL_FOLDER)
    return result
