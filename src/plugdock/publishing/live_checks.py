"""The Marketplace checks that read dependencies, ask a server, resolve with uv, or install in a daemon."""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
from packaging.version import InvalidVersion, Version

from plugdock.packaging.runtime_wheel import DISTRIBUTION, WHEEL_FOLDER
from plugdock.packaging.uv import uv_binary
from plugdock.publishing.checks import CheckResult, _fail, _pass
from plugdock.publishing.source import Candidate

VERSION_OPERATOR_RE = re.compile(r"(===|==|~=|!=|<=|>=|<|>|\^)")
DIRECT_URL_RE = re.compile(r"(^|\s@)\s*(?:https?|ftp|file)://", re.IGNORECASE)
LOCAL_PATH_RE = re.compile(r"(^|\s@)\s*(?:\./|\.\./|/)")
NAME_RE = re.compile(r"^\s*([A-Za-z0-9_.-]+)")
MIN_DIFY_PLUGIN = Version("0.9.0")  # the toolkit's floor: older SDKs lack what the platform now assumes
MIN_PLUGDOCK_SDK = Version("0.1.0")
OPTIONS = ("-c ", "--constraint ", "--extra-index-url ", "--find-links ", "--index-url ", "--no-binary ",
           "--only-binary ", "--trusted-host ", "--use-pep517", "--use-feature ", "--hash", "-r ", "--requirement ")


def _requirements(c: Candidate) -> list[tuple[int, str]]:
    out = []
    for number, raw in enumerate((c.text("requirements.txt") or "").splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            out.append((number, line))
    return out


def _name(requirement: str) -> str:
    match = NAME_RE.match(requirement.split(" @ ", 1)[0])
    return match.group(1).lower().replace("_", "-") if match else ""


def check_package_dependencies(c: Candidate) -> CheckResult:
    """check-package-dependencies: git and URL installs block, a requirement with no version constraint blocks;
    a local path (the SDK wheel plugdock ships) is for the reviewer, a warning."""
    step, errors, warnings = "Check Package Dependencies", [], []
    first: int | None = None
    for number, req in _requirements(c):
        where = f"requirements.txt:{number}"
        if "git+" in req.lower():
            errors.append(f"{where}: git-based install is not allowed: {req}")
        elif DIRECT_URL_RE.search(req):
            errors.append(f"{where}: direct URL install is not allowed: {req}")
        elif req.startswith(("-e ", "--editable ")):
            warnings.append(f"{where}: editable install requires reviewer approval: {req}")
        elif LOCAL_PATH_RE.search(req):
            warnings.append(f"{where}: local path dependency requires reviewer approval: {req.split(' --hash')[0]}")
        elif not req.startswith(OPTIONS) and not VERSION_OPERATOR_RE.search(req):
            errors.append(f"{where}: dependency has no version constraint: {req}")
        if errors and first is None:
            first = number
    if errors:
        return _fail("package_dependencies", step, "; ".join(errors), file="requirements.txt", line=first,
                     warnings=warnings)
    return _pass("package_dependencies", step, f"{len(_requirements(c))} requirement lines", warnings=warnings)


def check_sdk_version(c: Candidate) -> CheckResult:
    """dify_plugin must be >= 0.9.0 (the toolkit's rule); plugdock's own SDK travels as a wheel inside the
    package, whose version is read from its file name."""
    step = "Check Package Dependencies"
    wheel = re.compile(rf"^{WHEEL_FOLDER}/plugdock_sdk-([^-]+)-")
    for name in c.files:
        if match := wheel.match(name):
            found = Version(match.group(1))
            if found < MIN_PLUGDOCK_SDK:
                return _fail("sdk_version", step, f"{DISTRIBUTION} {found} is older than {MIN_PLUGDOCK_SDK}: "
                             "package it again with a current plugdock", file=name)
            return _pass("sdk_version", step, f"{DISTRIBUTION} {found} (shipped in the package)")
    for number, req in _requirements(c):
        if _name(req) == "dify-plugin":
            bound = re.search(r"(?:>=|==|~=)\s*([0-9][0-9A-Za-z.+-]*)", req)
            try:
                ok = bound is not None and Version(bound.group(1)) >= MIN_DIFY_PLUGIN
            except InvalidVersion:
                ok = False
            if not ok:
                return _fail("sdk_version", step, f"dify_plugin dependency must be >= {MIN_DIFY_PLUGIN}: {req}",
                             file="requirements.txt", line=number)
            return _pass("sdk_version", step, req)
    return _fail("sdk_version", step, "requirements.txt names no plugin SDK (plugdock or dify_plugin)",
                 file="requirements.txt")


def version_on_marketplace(c: Candidate, base_url: str) -> bool:
    """The workflow's question: GET /api/v1/plugins/AUTHOR/NAME/VERSION answering 200 with code 0."""
    url = f"{base_url.rstrip('/')}/api/v1/plugins/{c.author}/{c.name}/{c.version}"
    response = httpx.get(url, timeout=httpx.Timeout(30, connect=10))
    if response.status_code != 200:
        return False
    try:
        return bool(response.json().get("code") == 0)
    except (ValueError, AttributeError):
        return False


def check_version_exists(c: Candidate, *, marketplace_url: str | None,
                         released: Callable[[str, str], bool] | None = None) -> CheckResult:
    """``released(tag, asset)`` answers for a GitHub repository; either source, or both, may be given."""
    step = "Check If Version Exists"
    if marketplace_url is None and released is None:
        return CheckResult("version_exists", step, True, "skipped: give --marketplace-url or --repo to ask",
                           skipped=True)
    asked = []
    try:
        if marketplace_url is not None:
            asked.append(marketplace_url)
            if version_on_marketplace(c, marketplace_url):
                return _fail("version_exists", step, f"Plugin version {c.version} by {c.author} already exists in "
                             f"the marketplace at {marketplace_url}: update the version in manifest.yaml",
                             file="manifest.yaml")
        if released is not None:
            asked.append("the GitHub release")
            if released(f"v{c.version}", c.asset_name):
                return _fail("version_exists", step, f"release v{c.version} already carries {c.asset_name}: "
                             "update the version in manifest.yaml (or publish github --replace)",
                             file="manifest.yaml")
    except httpx.TransportError as exc:
        return _fail("version_exists", step, f"cannot ask {asked[-1]}: {exc or type(exc).__name__}")
    return _pass("version_exists", step, f"{c.version} is not published yet (asked {' and '.join(asked)})")


def check_plugin_deps(c: Candidate) -> CheckResult:
    """The workflow installs requirements.txt in a fresh venv; resolving it with ``uv pip compile`` for the
    manifest's Python answers the same question without installing."""
    step = "Check Plugin Deps"
    if "requirements.txt" not in c.files:
        return CheckResult("plugin_deps", step, True, "skipped: no requirements.txt", skipped=True)
    uv = uv_binary()
    if not uv:
        return _fail("plugin_deps", step, "uv is not installed (pip install uv): it resolves requirements.txt")
    python = str(((c.manifest.get("meta") or {}).get("runner") or {}).get("version") or "3.12")
    with tempfile.TemporaryDirectory(prefix="plugdock-deps-") as tmp:
        for name, data in c.files.items():
            if name == "requirements.txt" or name.startswith(f"{WHEEL_FOLDER}/"):
                target = Path(tmp, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        proc = subprocess.run([uv, "pip", "compile", "requirements.txt", "--python-version", python, "--quiet",
                               "--no-header"], cwd=tmp, capture_output=True, text=True, check=False, timeout=600)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return _fail("plugin_deps", step, f"requirements.txt does not resolve for Python {python}: "
                     + " ".join(lines[-6:])[:900], file="requirements.txt")
    pinned = [ln for ln in proc.stdout.splitlines() if ln and not ln.startswith((" ", "#"))]
    return _pass("plugin_deps", step, f"resolves for Python {python} ({len(pinned)} packages)")
