"""Interpreters the benchmarks compare: the official SDK and plugdock, each in its own Python 3.12 venv.

Built once with uv under ``~/.cache/plugdock-tests`` (or ``PLUGDOCK_TEST_CACHE``) and reused; a file lock
keeps parallel test workers from building the same venv twice.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OFFICIAL_SDK = os.environ.get("PLUGDOCK_OFFICIAL_SDK", "dify-plugin>=0.10,<0.11")
CACHE = Path(os.environ.get("PLUGDOCK_TEST_CACHE", Path.home() / ".cache" / "plugdock-tests"))


class EnvironmentError_(RuntimeError):
    pass


def find_python(version: str = "3.12") -> str | None:
    """A CPython of ``version``: PATH first, then pyenv, then uv's interpreters."""
    found = shutil.which(f"python{version}")
    if found and "shims" not in found:
        return found
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for candidate in sorted(pyenv_root.glob(f"versions/{version}*/bin/python{version}"), reverse=True):
        return str(candidate)
    out = subprocess.run([sys.executable, "-m", "uv", "python", "find", version], capture_output=True, text=True,
                         check=False)
    return out.stdout.strip() or None if out.returncode == 0 else None


def _venv(name: str, install: list[str], probe: str) -> str:
    python312 = find_python("3.12")
    if python312 is None:
        raise EnvironmentError_("no Python 3.12 found (PATH, pyenv or uv)")
    venv = CACHE / name
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        python = venv / "bin" / "python"
        if python.exists() and subprocess.run([str(python), "-c", probe], capture_output=True,
                                              check=False).returncode == 0:
            return str(python)
        shutil.rmtree(venv, ignore_errors=True)
        uv = [sys.executable, "-m", "uv"]
        subprocess.run([*uv, "venv", "-q", "-p", python312, str(venv)], check=True)
        subprocess.run([*uv, "pip", "install", "-q", "-p", str(python), *install], check=True)
        return str(python)


def official_python() -> str:
    """Python 3.12 with the official ``dify-plugin`` from PyPI."""
    return _venv("dify-plugin-venv", [OFFICIAL_SDK], "import dify_plugin")


def plugdock_python() -> str:
    """Python 3.12 with this checkout of plugdock (editable), for like-for-like comparisons."""
    return _venv("plugdock-venv", ["-e", str(REPO)], "import plugdock.sdk, plugdock.runtime.server")


# -- the official daemon's install of a package, reproduced --------------------------------------------------

def official_daemon_env(folder: Path, cache: Path) -> dict[str, str]:
    """``buildUVCommandEnv``: VIRTUAL_ENV, PATH, UV_CACHE_DIR and the certificate variables, nothing else. PATH
    has a Python 3.12 first, as the official daemon's image does."""
    from plugdock.daemon.plugins.environments import find_interpreter

    python312 = Path(find_interpreter("3.12")).parent
    env = {"VIRTUAL_ENV": str(folder / ".venv"), "PATH": f"{python312}{os.pathsep}{os.environ['PATH']}",
           "UV_CACHE_DIR": str(cache)}
    env.update({k: os.environ[k] for k in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE") if k in os.environ})
    return env


def official_install_commands(folder: Path, uv: str) -> list[list[str]]:
    """What the official daemon runs in an extracted package (local_runtime/setup_python_environment.go, no pip
    mirror set): ``uv venv --python 3.12``, then ``uv sync --no-dev`` (``--frozen`` with a lock) whenever
    pyproject.toml exists, else ``uv pip install -r requirements.txt``."""
    steps = [[uv, "venv", ".venv", "--python", "3.12"]]
    if (folder / "pyproject.toml").exists():
        steps.append([uv, "sync", "--no-dev", *(["--frozen"] if (folder / "uv.lock").exists() else [])])
    else:
        steps.append([uv, "pip", "install", "-r", "requirements.txt"])
    return steps
