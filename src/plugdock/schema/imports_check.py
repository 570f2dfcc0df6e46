"""Does a plugin's code import only what its requirements install?

A plugin that imports a package its ``requirements.txt`` (or ``pyproject.toml``) does not provide installs fine
and then fails at its first call with ``ModuleNotFoundError``: a ported plugin whose code says ``plugdock`` while
its dependencies still say ``dify_plugin`` is the common case. ``validate`` and ``package`` report each such
import at its ``file:line``. The check is conservative: an import is an error only when its distribution is known
and what the requirements install is known too (``uv.lock``, the SDKs' own dependencies, or the metadata of what
is installed here); anything less certain is a warning.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from plugdock.schema.problems import Problem
from plugdock.schema.sources import FileSource

_PLUGDOCK = {"plugdock", "plugdock-sdk"}
_SDK_DEPENDENCIES = {
    "plugdock": {"plugdock-sdk", "pydantic", "pydantic-core", "annotated-types", "typing-extensions",
                 "typing-inspection", "pyyaml", "httpx", "httpcore", "anyio", "idna", "certifi", "sniffio", "h11",
                 "werkzeug", "markupsafe"},
    # dify-plugin 0.9.0's dependencies, as uv resolves them (tools/json_process's uv.lock)
    "dify-plugin": {"annotated-types", "anyio", "blinker", "certifi", "cffi", "charset-normalizer", "click",
                    "colorama", "dpkt", "flask", "gevent", "greenlet", "h11", "httpcore", "httpx", "idna",
                    "itsdangerous", "jinja2", "markupsafe", "multidict", "packaging", "propcache", "pycparser",
                    "pydantic", "pydantic-core", "pydantic-settings", "python-dotenv", "pyyaml", "regex", "requests",
                    "socksio", "tiktoken", "typing-extensions", "typing-inspection", "urllib3", "werkzeug", "yarl",
                    "zope-event", "zope-interface", "sniffio"},
}
_SDK_DEPENDENCIES["plugdock-sdk"] = _SDK_DEPENDENCIES["plugdock"]

# Import names whose distribution is named otherwise (the usual ones; the host's installed metadata adds more)
IMPORT_NAMES: dict[str, tuple[str, ...]] = {
    "plugdock": ("plugdock", "plugdock-sdk"), "dify_plugin": ("dify-plugin",), "yaml": ("pyyaml",),
    "PIL": ("pillow",), "bs4": ("beautifulsoup4",), "cv2": ("opencv-python", "opencv-python-headless",
                                                           "opencv-contrib-python"),
    "sklearn": ("scikit-learn",), "dateutil": ("python-dateutil",), "dotenv": ("python-dotenv",),
    "jwt": ("pyjwt",), "docx": ("python-docx",), "pptx": ("python-pptx",), "fitz": ("pymupdf",),
    "Crypto": ("pycryptodome",), "Cryptodome": ("pycryptodomex",), "magic": ("python-magic",), "attr": ("attrs",),
    "OpenSSL": ("pyopenssl",), "git": ("gitpython",), "jose": ("python-jose",), "multipart": ("python-multipart",),
    "socks": ("pysocks",), "serial": ("pyserial",), "zmq": ("pyzmq",),
    "pydantic_core": ("pydantic-core",), "googleapiclient": ("google-api-python-client",),
    "qcloud_cos": ("cos-python-sdk-v5",), "volcenginesdkarkruntime": ("volcengine-python-sdk",),
    "vertexai": ("google-cloud-aiplatform",), "nacl": ("pynacl",), "websocket": ("websocket-client",),
    "psycopg2": ("psycopg2", "psycopg2-binary"),
}
_SKIPPED_DIRS = {".venv", "venv", "tests", "test", "wheels", "__pycache__"}
_SHIPPED_WHEEL = re.compile(r"^\s*(?:\./)?wheels/plugdock_sdk-")


@dataclass(frozen=True)
class Provided:
    """What a plugin's requirements install: distribution names, and whether that list is the whole of it."""

    origin: str
    direct: frozenset[str]
    names: frozenset[str]
    complete: bool

    @property
    def does(self) -> str:
        """``requirements.txt does`` / ``pyproject.toml and uv.lock do``, for the messages."""
        return f"{self.origin} {'do' if ' and ' in self.origin else 'does'}"


def _requirement_lines(text: str) -> Iterator[str]:
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            yield line


def _names(lines: Iterator[str] | list[str]) -> set[str]:
    out = set()
    for line in lines:
        if _SHIPPED_WHEEL.match(line):
            out.add("plugdock-sdk")
            continue
        try:
            out.add(canonicalize_name(Requirement(re.split(r"\s--?[a-zA-Z]", line)[0]).name))
        except InvalidRequirement:
            continue
    return out


def provided(source: FileSource) -> Provided | None:
    """What the package's install step would install, read as the official daemon picks the file; None when the
    plugin has no dependency file (nothing to compare with)."""
    requirements = source.read("requirements.txt")
    pyproject = source.read("pyproject.toml")
    lock = source.read("uv.lock")
    if requirements is not None:
        origin, direct = "requirements.txt", _names(_requirement_lines(requirements.decode("utf-8", "replace")))
    elif pyproject is not None:
        try:
            project = tomllib.loads(pyproject.decode("utf-8", "replace")).get("project", {})
        except tomllib.TOMLDecodeError:
            return None
        deps = project.get("dependencies", []) if isinstance(project, dict) else []
        origin, direct = "pyproject.toml", _names([str(d) for d in deps if isinstance(d, str)])
    else:
        return None
    if lock is not None and origin == "pyproject.toml":
        try:
            packages = tomllib.loads(lock.decode("utf-8", "replace")).get("package", [])
        except tomllib.TOMLDecodeError:
            packages = []
        locked = {canonicalize_name(str(p.get("name", ""))) for p in packages if isinstance(p, dict)}
        return Provided("pyproject.toml and uv.lock", frozenset(direct), frozenset(locked | direct), True)
    names, complete = _closure(direct)
    return Provided(origin, frozenset(direct), frozenset(names), complete)


def _closure(direct: set[str]) -> tuple[set[str], bool]:
    """The direct requirements and what they depend on, from the SDKs' lists or the installed metadata."""
    found, todo, complete = set(direct), list(direct), True
    while todo:
        name = todo.pop()
        if name in _SDK_DEPENDENCIES:
            found |= _SDK_DEPENDENCIES[name]
            continue
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            complete = False
            continue
        for dependency in _names([r.split(";")[0] for r in requires if "extra ==" not in r]):
            if dependency not in found:
                found.add(dependency)
                todo.append(dependency)
    return found, complete


@functools.lru_cache(maxsize=1)
def _installed_names() -> dict[str, tuple[str, ...]]:
    """Import name -> distributions, from what is installed here (a hint, never the plugin's environment)."""
    return {name: tuple(canonicalize_name(d) for d in dists)
            for name, dists in importlib.metadata.packages_distributions().items()}


def _own_modules(files: list[str]) -> set[str]:
    """Top-level names the plugin's own files and folders provide (``tools`` for ``tools/parse.py``)."""
    return {f.split("/", 1)[0].removesuffix(".py") for f in files if f.endswith(".py") or "/" in f}


def _optional(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside ``try: ... except ImportError`` or ``if TYPE_CHECKING:``: the author planned for it being absent."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Try) and any(
                h.type is None or "ImportError" in ast.unparse(h.type) or "ModuleNotFoundError" in ast.unparse(h.type)
                for h in node.handlers):
            return True
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(text: bytes) -> Iterator[tuple[str, int, int]]:
    """(top-level name, line, column) of each absolute import a plugin cannot do without."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return  # reported by the syntax check
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        if not _optional(node, parents):
            for name in names:
                yield name.split(".")[0], node.lineno, node.col_offset + 1


def import_problems(source: FileSource) -> list[Problem]:
    """One problem per import of a package the plugin's requirements do not install (stdlib and own code aside)."""
    have = provided(source)
    if have is None:
        return []
    files = source.files()
    own = _own_modules(files) | set(sys.stdlib_module_names)
    problems: list[Problem] = []
    for path in sorted(f for f in files if f.endswith(".py") and not _SKIPPED_DIRS & set(f.split("/")[:-1])):
        seen: set[str] = set()
        for name, line, column in imports_of(source.read(path) or b""):
            if name in own or name in seen or name.startswith("_"):
                continue
            seen.add(name)
            problem = _check(name, have)
            if problem:
                severity, message = problem
                problems.append(Problem(path, line, column, "", message, severity))
    return problems


def _check(name: str, have: Provided) -> tuple[str, str] | None:
    candidates = IMPORT_NAMES.get(name) or _installed_names().get(name) or ()
    if canonicalize_name(name) in have.names or any(c in have.names for c in candidates):
        return None
    squashed = re.sub(r"[-_.]", "", name.lower())
    if not candidates and any(squashed in re.sub(r"[-_.]", "", d) for d in have.names):
        return None  # google -> google-genai, tencentcloud -> tencentcloud-sdk-python: a namespace or an SDK's name
    sdks = have.direct & (_PLUGDOCK | {"dify-plugin"})
    if name in ("plugdock", "dify_plugin"):
        # Naming the other SDK is certain to fail (a port that left the dependencies behind), and so is naming
        # none in a lock, which is all that will be installed; else (the metadata installed here is only a
        # hint of what a requirement brings) it is a warning
        severity = "error" if sdks or (have.complete and "uv.lock" in have.origin) else "warning"
        if name == "plugdock":
            return severity, (f"imports plugdock, which {have.does} not name: add `plugdock` to it (`plugdock "
                              "package` ships plugdock inside the package), or run `plugdock port` to port the "
                              "dependency files too")
        return severity, (f"imports dify_plugin, which {have.does} not install: add `dify_plugin`, or run "
                          "`plugdock port` to import plugdock instead")
    wanted = " or ".join(candidates) if candidates else canonicalize_name(name)
    if candidates and have.complete:
        return "error", (f"imports {name} (distribution {wanted}), which {have.does} not install: the "
                         f"plugin would fail with ModuleNotFoundError; add {candidates[0]} to {have.origin}")
    return "warning", (f"imports {name}, which {have.does} not seem to install (no distribution {wanted} "
                       "among its requirements" + ("" if have.complete else " and what they depend on is not known "
                                                   "here") + "); add it unless a requirement brings it")
