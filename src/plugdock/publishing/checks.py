"""The Marketplace's automated checks, run locally on the packed files.

Each check carries the name of the step or validator that runs it for a pull request to langgenius/dify-plugins
(``.github/workflows/pre-check-plugin*.yaml`` and the ``dify-marketplace-toolkit`` validators), so a failure here
reads as the failure the pull request would get. The checks that need the network or a daemon are in
``live_checks``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plugdock.publishing.source import Candidate
from plugdock.schema.python_check import check_sources

MAX_PACKAGE_BYTES = 50 * 1024 * 1024  # check-package-contents: both the .difypkg and the unpacked tree
MAX_PACKAGE_FILES = 5000
REQUIRED_FIELDS = ("author", "name", "version", "type", "icon", "plugins", "privacy", "repo", "contact",
                   "label.en_US", "description.en_US", "meta.version", "meta.arch", "meta.runner.language",
                   "meta.runner.version", "meta.runner.entrypoint")
PRIVACY_TEMPLATE_MARKERS = ("please fill in the privacy policy",)
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
REPOSITORY_HOSTS = r"(?:www\.)?(?:github\.com|gitlab\.com|bitbucket\.org|gitee\.com|codeberg\.org|git\.sr\.ht)"
SOURCE_REPOSITORY_RE = re.compile(rf"https?://{REPOSITORY_HOSTS}/[^\s)>\"]+", re.IGNORECASE)
CJK_RE = re.compile(r"[\u3400-\u4DBF\u4E00-\u9FFF]")
FENCE_RE = re.compile(r"^\s*(```|~~~)")
TEMPLATE_ICON_MARKER = "DIFY_MARKETPLACE_TEMPLATE_ICON_DO_NOT_USE"
# The icon of Dify's plugin template, which the workflow compares with all whitespace removed.
DIFY_DEFAULT_ICON = ('<svg width="100" height="100" xmlns="http://www.w3.org/2000/svg"><path d="M20 20 V80 M20 20 '
                     'H60 Q80 20 80 40 T60 60 H20" fill="none" stroke="black" stroke-width="5"/></svg>')
BLOCKED_DIRS = {".git", ".hg", ".svn", ".venv", "venv", "env", "__pycache__", ".pytest_cache", ".ruff_cache",
                ".mypy_cache", ".tox", ".nox", ".idea", ".vscode", "node_modules", "pycache"}
BLOCKED_FILES = {".DS_Store", ".gitconfig", "Thumbs.db", "desktop.ini", "id_rsa"}
ALLOWED_ENV_FILES = {".env.example", ".env.sample", ".env.template"}
BLOCKED_SUFFIXES = {".key", ".pem", ".p12", ".pfx", ".pyc", ".pyo", ".log", ".tmp", ".swp", ".swo", ".bak"}
README_SECTIONS = {
    "setup instructions": ("setup", "install", "installation", "configure", "configuration", "getting started"),
    "usage instructions": ("usage", "use", "example", "examples", "workflow", "chatflow"),
}


@dataclass
class CheckResult:
    """One check: its validator name, the workflow step it belongs to, and where it failed."""

    name: str
    step: str
    ok: bool
    message: str
    file: str | None = None
    line: int | None = None
    warnings: list[str] = field(default_factory=list)
    skipped: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "step": self.step, "status": self.status, "message": self.message,
                "file": self.file, "line": self.line, "warnings": self.warnings}

    @property
    def status(self) -> str:
        return "skipped" if self.skipped else ("pass" if self.ok else "fail")

    @property
    def where(self) -> str:
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line else self.file


def _pass(name: str, step: str, message: str, **kw: Any) -> CheckResult:
    return CheckResult(name, step, True, message, **kw)


def _fail(name: str, step: str, message: str, **kw: Any) -> CheckResult:
    return CheckResult(name, step, False, message, **kw)


def _line_of(text: str | None, key: str) -> int | None:
    """The line of a top-level ``key:`` in a YAML text (the checks report where to edit)."""
    for number, line in enumerate((text or "").splitlines(), 1):
        if line.startswith(f"{key}:"):
            return number
    return None


def _field(manifest: dict[str, Any], dotted: str) -> Any:
    value: Any = manifest
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def check_pkg_paths(c: Candidate) -> CheckResult:
    step = "Get PR Path"
    if c.extra_packages:
        return _fail("pkg_paths", step, f"the pull request must change exactly one .difypkg, and the package "
                     f"carries {', '.join(c.extra_packages)} inside: add *.difypkg to .difyignore",
                     file=c.extra_packages[0])
    return _pass("pkg_paths", step, f"one package: {c.marketplace_path}")


def check_required_files(c: Candidate) -> CheckResult:
    missing = [n for n in ("manifest.yaml", "README.md", "PRIVACY.md") if n not in c.files]
    if not any(n.startswith("_assets/") for n in c.files):
        missing.append("_assets/")
    if missing:
        return _fail("required_files", "Check Plugin Manifest", f"missing required file: {', '.join(missing)}",
                     file=missing[0])
    return _pass("required_files", "Check Plugin Manifest", "manifest.yaml, README.md, PRIVACY.md and _assets/")


def check_manifest_author(c: Candidate) -> CheckResult:
    step, line = "Check Plugin Manifest", _line_of(c.text("manifest.yaml"), "author")
    for word in ("langgenius", "dify"):
        if word in c.author:
            return _fail("manifest_author", step, f"author {c.author!r} must not contain {word!r}",
                         file="manifest.yaml", line=line)
    return _pass("manifest_author", step, f"author {c.author!r}")


def check_manifest_metadata(c: Candidate) -> CheckResult:
    step, text = "Check Plugin Manifest", c.text("manifest.yaml")
    errors: list[tuple[str, int | None]] = []
    for dotted in REQUIRED_FIELDS:
        value = _field(c.manifest, dotted)
        if value in (None, "", [], {}):
            errors.append((f"missing required field: {dotted}", _line_of(text, dotted.split(".")[0])))
    if c.manifest.get("type") not in (None, "plugin"):
        errors.append(("type must be 'plugin'", _line_of(text, "type")))
    repo = str(c.manifest.get("repo") or "")
    if repo and not re.fullmatch(SOURCE_REPOSITORY_RE, repo):
        errors.append((f"repo {repo!r} must be a source repository URL (GitHub, GitLab, Bitbucket, Gitee, Codeberg "
                       "or sourcehut)", _line_of(text, "repo")))
    contact = str(c.manifest.get("contact") or "")
    if contact and not EMAIL_RE.match(contact):
        errors.append((f"contact {contact!r} must be an email address", _line_of(text, "contact")))
    warnings = [] if _field(c.manifest, "meta.minimum_dify_version") else [
        "missing recommended field: meta.minimum_dify_version"]
    if errors:
        return _fail("manifest_metadata", step, "; ".join(e for e, _ in errors), file="manifest.yaml",
                     line=errors[0][1], warnings=warnings)
    return _pass("manifest_metadata", step, "required fields, repo and contact", warnings=warnings)


def check_manifest_privacy(c: Candidate) -> CheckResult:
    step, text = "Check Plugin Manifest", c.text("manifest.yaml")
    privacy, line = str(c.manifest.get("privacy") or ""), _line_of(text, "privacy")
    if "PRIVACY.md" not in c.files:
        return _fail("manifest_privacy", step, "missing required file: PRIVACY.md", file="PRIVACY.md")
    if not privacy:
        return _fail("manifest_privacy", step, "manifest.yaml has no privacy field: add `privacy: PRIVACY.md`",
                     file="manifest.yaml")
    if privacy.startswith(("http://", "https://")):
        target = "PRIVACY.md"
    elif re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", privacy):
        return _fail("manifest_privacy", step, f"privacy URL {privacy!r} must start with http:// or https://",
                     file="manifest.yaml", line=line)
    else:
        target = privacy.removeprefix("./")
        if target.startswith("/") or ".." in Path(target).parts:
            return _fail("manifest_privacy", step, f"privacy must reference a file inside the package: {privacy}",
                         file="manifest.yaml", line=line)
        if target not in c.files:
            return _fail("manifest_privacy", step, f"privacy references missing file: {privacy}",
                         file="manifest.yaml", line=line)
    body = (c.text(target) or "").lower()
    if not body.strip():
        return _fail("manifest_privacy", step, f"privacy policy file is empty: {target}", file=target)
    if any(marker in body for marker in PRIVACY_TEMPLATE_MARKERS):
        return _fail("manifest_privacy", step, f"privacy policy file still contains template placeholder text: "
                     f"{target}", file=target)
    return _pass("manifest_privacy", step, f"privacy: {privacy}")


def scaffold_icons() -> set[str]:
    """Every icon shipped in plugdock's scaffolds, whitespace removed: an icon identical to one is not a real icon."""
    root = Path(__file__).resolve().parent.parent / "cli" / "scaffolds"
    return {_squash(p.read_text("utf-8", errors="replace")) for p in root.glob("**/_assets/*") if p.is_file()}


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def check_plugin_icon(c: Candidate) -> CheckResult:
    step, icon = "Check Plugin Icon", str(c.manifest.get("icon") or "")
    path = f"_assets/{icon}"
    if not icon or path not in c.files:
        return _fail("plugin_icon", step, f"Plugin icon file not found: {path}", file=path)
    text = c.files[path].decode("utf-8", errors="replace")
    if TEMPLATE_ICON_MARKER in text:
        return _fail("plugin_icon", step, f"Plugin icon contains template placeholder text {TEMPLATE_ICON_MARKER!r}, "
                     "change default icon before submitting to marketplace", file=path)
    if _squash(text) == _squash(DIFY_DEFAULT_ICON):
        return _fail("plugin_icon", step, "Plugin icon is using the default template icon and must be customized",
                     file=path)
    if _squash(text) in scaffold_icons():
        return _fail("plugin_icon", step, "Plugin icon is plugdock's scaffold icon and must be customized "
                     "(`plugdock publish icon` writes one of the plugin's own)", file=path)
    return _pass("plugin_icon", step, path)


def check_readme_metadata(c: Candidate) -> CheckResult:
    step, text = "Check README Metadata", c.text("README.md")
    if text is None:
        return _fail("readme_metadata", step, "missing required file: README.md", file="README.md")
    if not text.strip():
        return _fail("readme_metadata", step, "README.md is empty", file="README.md")
    inside, count, first = False, 0, None
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE_RE.match(line):
            inside = not inside
            continue
        found = 0 if inside else len(CJK_RE.findall(line))
        if found and first is None:
            first = number
        count += found
    lowered = text.lower()
    warnings = [f"README.md may be missing {section}" for section, words in README_SECTIONS.items()
                if not any(w in lowered for w in words)]
    if count:
        return _fail("readme_metadata", step, "README.md primary content must be English; move localized content "
                     f"to README.<locale>.md (found {count} CJK characters)", file="README.md", line=first,
                     warnings=warnings)
    if not SOURCE_REPOSITORY_RE.search(text):
        return _fail("readme_metadata", step, "README.md must include a source repository URL", file="README.md",
                     warnings=warnings)
    return _pass("readme_metadata", step, "English, with a source repository link", warnings=warnings)


def check_created_at(c: Candidate, now: dt.datetime | None = None) -> CheckResult:
    step, raw = "Check Plugin Manifest", c.manifest.get("created_at")
    line = _line_of(c.text("manifest.yaml"), "created_at")
    try:
        stamp = raw if isinstance(raw, dt.datetime) else dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return _fail("created_at", step, f"created_at {raw!r} is not an RFC 3339 time", file="manifest.yaml",
                     line=line)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    current = now or dt.datetime.now(dt.UTC)
    if stamp > current:
        return _fail("created_at", step, f"created_at {raw} is in the future (now {current:%Y-%m-%dT%H:%M:%SZ})",
                     file="manifest.yaml", line=line)
    return _pass("created_at", step, f"created_at {stamp:%Y-%m-%dT%H:%M:%SZ}")


def check_package_contents(c: Candidate) -> CheckResult:
    errors: list[str] = []
    for name in c.files:
        parts = name.split("/")
        base = parts[-1]
        if blocked := next((p for p in parts[:-1] if p in BLOCKED_DIRS), None):
            errors.append(f"blocked directory: {'/'.join(parts[:parts.index(blocked) + 1])}/")
        elif base in BLOCKED_FILES or (base.startswith(".env") and base not in ALLOWED_ENV_FILES
                                       and (base == ".env" or base.startswith(".env."))):
            errors.append(f"blocked file: {name}")
        elif Path(base).suffix.lower() in BLOCKED_SUFFIXES:
            errors.append(f"blocked file suffix: {name}")
    errors = list(dict.fromkeys(errors))
    if errors:
        first = errors[0].split(": ", 1)[1]
        return _fail("package_contents", "Check Package Contents", "; ".join(errors[:10])
                     + (f" (and {len(errors) - 10} more)" if len(errors) > 10 else "")
                     + ": add them to .difyignore", file=first)
    return _pass("package_contents", "Check Package Contents", f"{len(c.files)} files, no development artifacts")


def check_package_size(c: Candidate) -> CheckResult:
    step, limit = "Check Package Contents", MAX_PACKAGE_BYTES
    if len(c.data) > limit:
        return _fail("package_size", step, f"package file size exceeds 50 MB: {len(c.data)} bytes")
    if c.uncompressed_size > limit:
        return _fail("package_size", step, f"package contents size exceeds 50 MB: {c.uncompressed_size} bytes")
    if len(c.files) > MAX_PACKAGE_FILES:
        return _fail("package_size", step, f"package contains too many files: {len(c.files)} files "
                     f"(limit {MAX_PACKAGE_FILES})")
    return _pass("package_size", step, f"{len(c.data)} bytes packed, {c.uncompressed_size} unpacked "
                 f"(limit {limit} each)")


def check_python_compile(c: Candidate) -> CheckResult:
    """The toolkit's ``compileall``, with the Python the plugin asks for (the Marketplace runs 3.12), found as
    ``validate`` finds it; the host parses when none is, and what it alone refuses is then a warning."""
    runner = str(_field(c.manifest, "meta.runner.version") or "3.12")
    sources = {n: d for n, d in c.files.items() if n.endswith(".py") and not n.startswith("wheels/")}
    problems = check_sources(sources, runner)
    errors = [p for p in problems if p.severity == "error"]
    warnings = [str(p) for p in problems if p.severity != "error"]
    if errors:
        return _fail("python_compile", "python_compile", errors[0].message, file=errors[0].file,
                     line=errors[0].line, warnings=warnings)
    return _pass("python_compile", "python_compile", f"{len(sources)} Python files parse (Python {runner})",
                 warnings=warnings)


STATIC_CHECKS: list[Callable[[Candidate], CheckResult]] = [
    check_pkg_paths, check_required_files, check_manifest_author, check_manifest_metadata, check_manifest_privacy,
    check_plugin_icon, check_readme_metadata, check_created_at, check_package_contents, check_package_size,
    check_python_compile,
]
