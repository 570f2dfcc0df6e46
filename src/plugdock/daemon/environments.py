"""Python environments for plugins, built with uv and shared.

An environment is named by a hash of (requirements, Python version, platform, plugdock build), so a
second plugin — or a new version — with the same dependencies reuses it: no rebuild, no extra disk.
Builds go to a temporary folder and are renamed into place, so a crash never leaves half an
environment that looks ready.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from plugdock.daemon.db import Database
from plugdock.daemon.models import Environment
from plugdock.daemon.sandbox import Sandbox
from plugdock.errors import PlugdockError

Progress = Callable[[str], None]


class EnvironmentBuildError(PlugdockError):
    code = "environment_build_failed"


@dataclass
class PythonEnv:
    id: str
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


def _uv() -> list[str]:
    found = os.environ.get("UV_PATH") or shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


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
        found = subprocess.run([*_uv(), "python", "find", version], capture_output=True, text=True, check=False)
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


_plugdock_wheel_lock = threading.Lock()


def plugdock_wheels(home: Path) -> tuple[Path | None, str]:
    """A folder holding a wheel of the running plugdock when it runs from a source checkout, and its hash.

    Plugins built with plugdock list it in requirements.txt; until it is on the package index the
    daemon offers its own build through ``--find-links``.
    """
    import plugdock

    source = Path(plugdock.__file__).resolve().parents[2]
    if not (source / "pyproject.toml").exists():
        return None, ""
    digest = hashlib.sha256()
    for path in sorted((source / "src" / "plugdock").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(source).as_posix().encode())
            digest.update(path.read_bytes())
    digest.update((source / "pyproject.toml").read_bytes())
    key = digest.hexdigest()[:16]
    target = home / "wheels" / key
    with _plugdock_wheel_lock:
        if not any(target.glob("plugdock-*.whl")):
            target.mkdir(parents=True, exist_ok=True)
            build = subprocess.run([*_uv(), "build", "--wheel", "-q", "-o", str(target), str(source)],
                                   capture_output=True, text=True, check=False)
            if build.returncode != 0:
                raise EnvironmentBuildError(f"could not build plugdock's own wheel: {build.stderr[-1000:]}")
    return target, key


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

    def key(self, requirements: bytes, python_version: str, extra: str = "") -> str:
        normalized = "\n".join(sorted(line.strip() for line in requirements.decode("utf-8", "replace").splitlines()
                                      if line.strip() and not line.strip().startswith("#")))
        material = f"{normalized}\0{python_version}\0{sys.platform}-{platform.machine()}\0{extra}"
        return hashlib.sha256(material.encode()).hexdigest()[:32]

    def ensure(self, requirements: bytes, python_version: str, progress: Progress | None = None) -> PythonEnv:
        """The environment for these requirements, built if it does not exist yet."""
        say = progress or (lambda _msg: None)
        needs_plugdock = any(line.strip().lower().startswith("plugdock")
                             for line in requirements.decode("utf-8", "replace").splitlines())
        wheels, wheel_key = plugdock_wheels(self.home) if needs_plugdock else (None, "")
        interpreter = find_interpreter(python_version)
        if self.sandbox is not None:  # confined plugin users must be able to run it
            interpreter = self.sandbox.reachable_interpreter(interpreter)
        env_id = self.key(requirements, python_version, f"{wheel_key}\0{interpreter}")
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
            self._build(path, interpreter, requirements, wheels, say)
            with self.db.session() as s:
                s.merge(Environment(id=env_id, python_version=python_version, path=str(path), status="ready"))
            return PythonEnv(env_id, path)

    def _build(self, path: Path, interpreter: str, requirements: bytes, wheels: Path | None, say: Progress) -> None:
        staging = path.with_name(path.name + ".building")
        shutil.rmtree(staging, ignore_errors=True)
        self._run([*_uv(), "venv", "-q", "--seed", "-p", interpreter, str(staging)], "create the virtualenv")
        req_file = staging / "requirements.plugin.txt"
        req_file.write_bytes(requirements)
        if requirements.strip():
            cmd = [*_uv(), "pip", "install", "-q", "--compile-bytecode", "--python", str(staging / "bin" / "python"),
                   "-r", str(req_file)]
            if wheels is not None:
                cmd += ["--find-links", str(wheels)]
            if self.index_url:
                cmd += ["--index-url", self.index_url]
            say("installing dependencies with uv")
            self._run(cmd, "install the dependencies")
        if self.sandbox is not None:
            self.sandbox.make_readable(staging)
        shutil.rmtree(path, ignore_errors=True)
        os.replace(staging, path)

    @staticmethod
    def _run(cmd: list[str], stage: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            raise EnvironmentBuildError(f"failed to {stage} (uv exited {proc.returncode}):\n{tail}")

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
