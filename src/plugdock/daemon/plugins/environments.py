"""Python environments for plugins, built with uv and shared.

An environment is named by a hash of (requirements, Python version, platform, plugdock build), so a
second plugin — or a new version — with the same dependencies reuses it: no rebuild, no extra disk.
Builds go to a temporary folder and are renamed into place, so a crash never leaves half an
environment that looks ready.

Requirements arrive checked by :mod:`plugdock.daemon.plugins.requirements_policy`. When the sandbox separates users
(root), uv runs as the home's builder uid, confined like a plugin, with an allow-listed environment, its HOME
and TMPDIR in ``<home>/build/<env>.work`` and its cache in ``<home>/build/uv-cache`` (a build that may run
sdists gets a cache of its own); sdists are refused (``--only-binary :all:``) unless the operator allows them.
The finished folder is given back to root without following links before it is made readable. uv's output
goes to the daemon's log; errors carry only its diagnostic lines, cut after any path outside the build.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from plugdock.daemon.plugins.folders import own_dir
from plugdock.daemon.plugins.requirements_policy import CheckedRequirements
from plugdock.daemon.plugins.sandbox import MARKER, Sandbox, private_dir
from plugdock.daemon.state.db import Database
from plugdock.daemon.state.models import Environment
from plugdock.errors import PlugdockError
from plugdock.packaging.uv import uv_binary, uv_command

Progress = Callable[[str], None]


class EnvironmentBuildError(PlugdockError):
    code = "environment_build_failed"


# The interpreter the official daemon gives every plugin (local_runtime: `uv venv --python 3.12`).
OFFICIAL_PYTHON = "3.12"
# uv's words when a dependency needs a newer Python than the environment's.
TOO_OLD = re.compile(r"current Python version \([\d.]+\) does\s+not\s+satisfy")


@dataclass
class PythonEnv:
    id: str
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


_interpreters: dict[str, str] = {}


def _is_version(candidate: str, version: str) -> bool:
    probe = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True, check=False)
    return probe.returncode == 0 and probe.stdout.strip() == version


def find_interpreter(version: str) -> str:
    """A CPython ``version`` (e.g. "3.12") on this machine: PATH, then pyenv, then uv-managed Pythons.

    Each place is asked only when the ones before it had nothing (``uv python find`` alone costs ~0.3 s),
    and the answer is remembered for as long as the interpreter exists.
    """
    version = ".".join(version.strip().split(".")[:2])
    cached = _interpreters.get(version)
    if cached and os.path.exists(cached):
        return cached
    tried: list[str] = []
    on_path = shutil.which(f"python{version}")
    tried.append(f"python{version} on PATH")
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    tried.append(f"pyenv ({pyenv_root}/versions)")

    def candidates() -> Iterator[str]:
        if on_path and "/shims/" not in on_path:
            yield on_path
        yield from (str(p) for p in sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}"),
                                           reverse=True))
        tried.append("uv python find")
        found = subprocess.run([*uv_command(), "python", "find", version], capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip():
            yield found.stdout.strip()

    for candidate in candidates():
        if _is_version(candidate, version):
            _interpreters[version] = candidate
            return candidate
    raise EnvironmentBuildError(
        f"no Python {version} interpreter found (looked at: {', '.join(dict.fromkeys(tried))}); the plugin's "
        f"manifest asks for meta.runner.version {version}: install it (e.g. `pyenv install {version}` or "
        f"`uv python install {version}`)"
    )


# What a build as the builder uid sees of the daemon's environment: how to reach the index, nothing else.
PASSED_TO_BUILDS = ("PATH", "LANG", "LC_ALL", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                    "no_proxy")
# uv variables the daemon sets itself, or that would undo the build policy.
WITHHELD_UV = ("UV_CACHE_DIR", "UV_CONFIG_FILE", "UV_NO_CONFIG", "UV_NO_BINARY", "UV_NO_BINARY_PACKAGE",
               "UV_NO_BUILD_ISOLATION", "UV_LINK_MODE", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON_INSTALL_DIR")
# uv's own diagnostic lines; anything else it prints (a build's output, an echoed file) stays out of the API.
UV_DIAGNOSTICS = ("error:", "warning:", "hint:", "help:", "cause:", "caused by:", "×", "╰─▶", "├─▶")
SUMMARY_LINES = 12
SUMMARY_LINE_CHARS = 240
# An absolute path (or file:// URL) that starts a token: not the //host or /path of an https URL.
_PATH_TOKEN = re.compile(r"(?<![\w/.:@-])(?:file://)?(/(?!/)[^\s`'\"]*)")


def summarize_uv_output(output: str, allowed: list[Path]) -> str:
    """uv's diagnostic lines only, each cut short, and cut after any path outside ``allowed``: uv quotes the files
    it reads (``-r /root-only/key`` once printed the key's first line), and those must not reach the API."""
    prefixes = [str(path).rstrip("/") for path in allowed]
    kept: list[str] = []
    for raw in output.splitlines():
        line = raw.strip()
        if not line.lower().startswith(UV_DIAGNOSTICS):
            continue
        for match in _PATH_TOKEN.finditer(line):
            path = match.group(1)
            if not any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes):
                end = match.end() + (line[match.end():match.end() + 1] in ("`", "'", '"'))
                line = line[:end] + " [rest withheld]"
                break
        kept.append(line if len(line) <= SUMMARY_LINE_CHARS else line[:SUMMARY_LINE_CHARS - 3] + "...")
        if len(kept) == SUMMARY_LINES:
            break
    return "\n".join(kept) or "(uv printed no diagnostic; the daemon's log has its output)"


def _owned_dir(path: Path, uid: int, mode: int) -> None:
    """``path`` as a real directory owned by ``uid`` with ``mode``, changed through its own descriptor (never a
    link); used only where the builder cannot write the parent."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    own_dir(path, uid, uid, mode)


@dataclass
class _WorkFolder:
    """``<home>/build/<env>.work``: root-owned and enterable; the builder's HOME, TMPDIR (on disk, not the small
    private /tmp) and, for builds that may run third-party code, a uv cache of its own; the checked wheel copies."""

    root: Path
    home: Path
    tmp: Path
    cache: Path
    wheels: Path

    @classmethod
    def make(cls, build_root: Path, name: str, builder: int | None, shared_cache: bool) -> _WorkFolder:
        build_root.mkdir(parents=True, exist_ok=True)
        root = build_root / f"{name}.work"
        shutil.rmtree(root, ignore_errors=True)
        if builder is None:  # as today: uv's own cache of the daemon's user
            root.mkdir(mode=0o700)
            folder = cls(root, root / "home", root / "tmp", root / "cache", root / "wheels")
            folder.wheels.mkdir(mode=0o700)
            return folder
        # A build that may run third-party code (sdists allowed) could poison a cache shared with later builds;
        # a wheel-only build runs nothing but uv, so those share one.
        cache = build_root / "uv-cache" if shared_cache else root / "cache"
        _owned_dir(build_root, 0, 0o711)  # the builder enters by name, lists nothing
        _owned_dir(root, 0, 0o711)
        folder = cls(root, root / "home", root / "tmp", cache, root / "wheels")
        for path in (folder.home, folder.tmp, folder.cache):
            private_dir(path, builder, builder)
        _owned_dir(folder.wheels, 0, 0o755)
        return folder


class _Runner:
    """Runs uv for one build: as the builder uid, confined, with an allow-listed environment, when there is one."""

    def __init__(self, sandbox: Sandbox | None, work: _WorkFolder, builder: int | None, build_id: str,
                 allowed: list[Path]) -> None:
        self.sandbox = sandbox
        self.work = work
        self.builder = builder
        self.build_id = build_id
        self.allowed = allowed

    def uv(self) -> list[str]:
        if self.builder is None or self.sandbox is None:
            return uv_command()
        binary = _uv_binary()
        if self.sandbox.reachable(binary):
            return [binary]
        return [_reachable_copy(binary, self.work.root.parent / "tools")]

    def environment(self, marker: str, interpreter: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in PASSED_TO_BUILDS
               or (k.startswith("UV_") and k not in WITHHELD_UV)}
        env.update(HOME=str(self.work.home), TMPDIR=str(self.work.tmp), UV_CACHE_DIR=str(self.work.cache),
                   UV_LINK_MODE="copy", PATH=os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"))
        env[MARKER] = marker
        library = self.sandbox.library_path(Path(interpreter)) if self.sandbox is not None else None
        if library is not None:  # a mirrored interpreter: its RPATH names the original's folder
            env["LD_LIBRARY_PATH"] = library
        # With HOME changed uv no longer sees the daemon user's own uv.toml: hand it over explicitly.
        config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "uv" / "uv.toml"
        if config.is_file():
            copy = self.work.root / "uv.toml"
            shutil.copyfile(config, copy)
            copy.chmod(0o644)
            env["UV_CONFIG_FILE"] = str(copy)
        return env

    def run(self, cmd: list[str], stage: str, requirements: CheckedRequirements, interpreter: str) -> None:
        if self.builder is None or self.sandbox is None:
            env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        else:
            confinement = self.sandbox.builder_confinement(self.build_id)
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                      env=self.environment(confinement.marker, interpreter), cwd=self.work.home,
                                      preexec_fn=self.sandbox.preexec(confinement))
            finally:
                self.sandbox.kill_all(confinement)
        if proc.returncode != 0:
            raise self._failure(proc, stage, requirements)

    def _failure(self, proc: subprocess.CompletedProcess[str], stage: str,
                 requirements: CheckedRequirements) -> EnvironmentBuildError:
        output = "\n".join(part for part in (proc.stderr, proc.stdout) if part)
        sys.stderr.write(f"plugdock: uv failed to {stage} (exit {proc.returncode}); its output:\n{output}\n")
        summary = summarize_uv_output(output, self.allowed)
        lines = requirements.lines_named_in(summary)
        where = "".join(f"; requirements.txt:{line.number} ({line.requirement.name})" for line in lines[:5])
        hint = ""
        if not requirements.allow_sdists and ("no usable wheels" in output
                                              or "building from source is disabled" in output):
            names = sorted(set(re.findall(r"Wheels are required for `([^`]+)`", output))) or \
                [line.requirement.name for line in lines] or ["a dependency"]
            hint = (f"\n{', '.join(names)}: no wheel for this platform, and source builds are off; an operator "
                    "can allow them with PLUGDOCK_ALLOW_SDISTS=true (sdists then build as an unprivileged user)")
        return EnvironmentBuildError(f"failed to {stage} (uv exited {proc.returncode}){where}{hint}\n{summary}")


def _uv_binary() -> str:
    """The uv executable itself (not a shim script that needs the daemon user's home)."""
    found = uv_binary()
    if found is None:
        raise EnvironmentBuildError("uv is not installed (pip install uv, or set UV_PATH)")
    return found


def _reachable_copy(binary: str, tools: Path) -> str:
    """A root-owned copy of ``binary`` the builder can run, when the original lies in a folder it cannot enter."""
    info = os.stat(binary)
    tag = hashlib.sha256(f"{binary}\0{info.st_size}\0{info.st_mtime_ns}".encode()).hexdigest()[:12]
    _owned_dir(tools, 0, 0o755)
    target = tools / f"uv-{tag}"
    if not target.exists():
        staging = tools / f".uv-{tag}.{os.getpid()}.{threading.get_ident()}"
        try:
            if info.st_mode & 0o005 != 0o005:
                raise PermissionError("others cannot run it")
            os.link(binary, staging)  # same file system and runnable by others: no copy needed
        except OSError:
            shutil.copyfile(binary, staging)
            staging.chmod(0o755)
        os.replace(staging, target)
    return str(target)


def _take_back(root: Path, builder: int) -> None:
    """Give a finished build to root before anything reads it as root (no builder process is left): every entry
    changed without following links, write bits for others and set-id bits dropped; anything the builder does
    not own (a hard link to someone else's file) fails the build instead of being made readable."""
    entries = [str(root)]
    for folder, dirs, files in os.walk(root, followlinks=False):
        entries.extend(os.path.join(folder, name) for name in (*dirs, *files))
    for entry in entries:
        info = os.lstat(entry)
        if info.st_uid != builder and not (info.st_uid == 0 and info.st_nlink == 1):
            raise EnvironmentBuildError(f"the dependency build left {entry}, which is not its own: refused")
        os.lchown(entry, 0, 0)
        if not stat.S_ISLNK(info.st_mode):
            os.chmod(entry, stat.S_IMODE(info.st_mode) & 0o755)


class EnvironmentManager:
    def __init__(self, home: Path, db: Database, index_url: str = "", sandbox: Sandbox | None = None) -> None:
        self.sandbox = sandbox
        self.root = home / "envs"
        self.root.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.db = db
        self.index_url = index_url
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # Builds that may run third-party code (sdists allowed) run one at a time: their output is taken back
        # from the builder uid, which another such build, running as the same uid, could disturb meanwhile.
        # Wheel-only builds run nothing but uv, so they run side by side (each has its own cgroup).
        self._builder_lock = threading.Lock()
        for stale in (home / "build").glob("*.work"):  # a build cut short by a crash
            shutil.rmtree(stale, ignore_errors=True)

    def key(self, requirements: bytes, python_version: str, extra: str = "") -> str:
        normalized = "\n".join(sorted(line.strip() for line in requirements.decode("utf-8", "replace").splitlines()
                                      if line.strip() and not line.strip().startswith("#")))
        material = f"{normalized}\0{python_version}\0{sys.platform}-{platform.machine()}\0{extra}"
        return hashlib.sha256(material.encode()).hexdigest()[:32]

    def ensure_for_runner(self, requirements: CheckedRequirements, declared: str,
                          progress: Progress | None = None) -> PythonEnv:
        """The environment for a manifest's ``meta.runner.version``, or for Python 3.12 where the official
        daemon would run the plugin and the declared version cannot.

        The official daemon builds every plugin with 3.12 whatever the manifest says, so official packages
        declare "3.10" and still require ``dify-plugin`` (Python>=3.12). plugdock honours the declared
        version, and falls back to 3.12 when no interpreter of it exists here or the dependencies refuse it.
        """
        say = progress or (lambda _msg: None)
        version = ".".join(declared.strip().split(".")[:2]) or OFFICIAL_PYTHON
        try:
            return self.ensure(requirements, version, say)
        except EnvironmentBuildError as exc:
            missing = exc.message.startswith(f"no Python {version} interpreter found")
            if version == OFFICIAL_PYTHON or not (missing or TOO_OLD.search(exc.message)):
                raise
        why = "no interpreter of it is on this machine" if missing else "its dependencies need a newer Python"
        say(f"meta.runner.version {version}: {why}; building with Python {OFFICIAL_PYTHON}, as the official "
            "daemon builds every plugin")
        return self.ensure(requirements, OFFICIAL_PYTHON, say)

    def ensure(self, requirements: CheckedRequirements, python_version: str,
               progress: Progress | None = None) -> PythonEnv:
        """The environment for these (policy-checked) requirements, built if it does not exist yet."""
        say = progress or (lambda _msg: None)
        interpreter = find_interpreter(python_version)
        if self.sandbox is not None:  # confined plugin users must be able to run it
            interpreter = self.sandbox.reachable_interpreter(interpreter)
        # the empty field held the hash of the daemon's own plugdock build once: kept, so existing environments stay
        env_id = self.key(requirements.source, python_version, f"\0{interpreter}")
        with self._locks_guard:
            lock = self._locks.setdefault(env_id, threading.Lock())
        with lock:
            path = self.root / env_id
            with self.db.session() as s:
                row = s.get(Environment, env_id)
                if row is not None and row.status == "ready" and (path / "bin" / "python").exists():
                    say(f"reusing environment {env_id[:12]} (same dependencies)")
                    return PythonEnv(env_id, path)
            say(f"building environment {env_id[:12]} with Python {python_version}")
            builder = self.sandbox.builder_uid if self.sandbox is not None else None
            if builder is None:
                self._build(path, interpreter, requirements, say, None)
            else:
                with self._builder_lock if requirements.allow_sdists else contextlib.nullcontext():
                    self._build(path, interpreter, requirements, say, builder)
            with self.db.session() as s:
                s.merge(Environment(id=env_id, python_version=python_version, path=str(path), status="ready"))
            return PythonEnv(env_id, path)

    def _build(self, path: Path, interpreter: str, requirements: CheckedRequirements, say: Progress,
               builder: int | None) -> None:
        """Build into ``<id>.building`` (as the builder uid when there is one), take it back, rename it into place."""
        staging = path.with_name(path.name + ".building")
        shutil.rmtree(staging, ignore_errors=True)
        work = _WorkFolder.make(self.home / "build", path.name, builder, shared_cache=not requirements.allow_sdists)
        try:
            copies = {line.number: line.wheel.copy_into(work.wheels) for line in requirements.wheels
                      if line.wheel is not None}
            req_file = work.root / "requirements.txt"
            req_file.write_text(requirements.render(copies), encoding="utf-8")
            req_file.chmod(0o644)
            if builder is not None:
                private_dir(staging, builder, builder)
            runner = _Runner(self.sandbox, work, builder, path.name, allowed=[staging, work.root, self.root,
                                                                                 self.home / "interpreters"])
            uv = runner.uv()
            # pip and setuptools come from the index: not for a package whose every line is a shipped wheel
            # (an offline package), which must install where no index is reachable, as the official daemon's does
            offline = bool(requirements.lines) and all(line.wheel is not None for line in requirements.lines)
            runner.run([*uv, "venv", "-q", *([] if offline else ["--seed"]), "-p", interpreter, str(staging)],
                       "create the virtualenv", requirements, interpreter)
            if requirements.lines:
                cmd = [*uv, "pip", "install", "-q", "--compile-bytecode", "--python", str(staging / "bin" / "python"),
                       "-r", str(req_file)]
                if not requirements.allow_sdists:
                    cmd += ["--only-binary", ":all:"]
                if self.index_url:
                    cmd += ["--index-url", self.index_url]
                say("installing dependencies with uv")
                runner.run(cmd, "install the dependencies", requirements, interpreter)
            if builder is not None:
                _take_back(staging, builder)
            if self.sandbox is not None:
                self.sandbox.make_readable(staging)
            shutil.rmtree(path, ignore_errors=True)
            os.replace(staging, path)
        finally:
            shutil.rmtree(work.root, ignore_errors=True)

    def collect_garbage(self, referenced: set[str]) -> list[str]:
        """Remove environments no installed package uses any more."""
        removed = []
        with self.db.session() as s:
            for row in s.execute(select(Environment)).scalars():
                if row.id not in referenced:
                    shutil.rmtree(row.path, ignore_errors=True)
                    s.delete(row)
                    removed.append(row.id)
        return removed
