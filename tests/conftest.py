"""Shared fixtures: real plugin folders made by ``plugdock init`` and a helper to build packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugdock.cli.templates import PluginAnswers, render_plugin

KINDS = [
    ("tool", "predefined"),
    ("model", "predefined"),
    ("model", "customizable"),
    ("extension", "predefined"),
    ("agent-strategy", "predefined"),
]


def make_plugin(root: Path, kind: str = "tool", name: str = "demo", model_method: str = "predefined") -> Path:
    render_plugin(
        PluginAnswers(kind=kind, name=name, author="tester", description="A test plugin.", model_method=model_method),
        root,
    )
    return root


@pytest.fixture
def tool_plugin(tmp_path: Path) -> Path:
    return make_plugin(tmp_path / "demo")


# -- the official SDK as a conformance peer -------------------------------------------------------------
import fcntl  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

OFFICIAL_SDK = os.environ.get("PLUGDOCK_OFFICIAL_SDK", "dify-plugin>=0.10,<0.11")
CACHE = Path(os.environ.get("PLUGDOCK_TEST_CACHE", Path.home() / ".cache" / "plugdock-tests"))


def find_python312() -> str | None:
    """A CPython 3.12 on this machine: PATH, then pyenv, then uv's own interpreters."""
    for name in ("python3.12",):
        found = shutil.which(name)
        if found and "shims" not in found:
            return found
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for candidate in sorted(pyenv_root.glob("versions/3.12*/bin/python3.12"), reverse=True):
        return str(candidate)
    uv = shutil.which("uv")
    if uv:
        out = subprocess.run([uv, "python", "find", "3.12"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    return None


@pytest.fixture(scope="session")
def official_python() -> str:
    """The python of a 3.12 venv with the official ``dify-plugin`` from PyPI (built once, then reused)."""
    python312 = find_python312()
    if python312 is None:
        pytest.fail("no Python 3.12 found (PATH, pyenv or uv); the official SDK needs it for conformance tests")
    venv = CACHE / "dify-plugin-venv"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        python = venv / "bin" / "python"
        check = subprocess.run([str(python), "-c", "import dify_plugin"], capture_output=True, check=False) \
            if python.exists() else None
        if check is None or check.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            uv = [sys.executable, "-m", "uv"]
            subprocess.run([*uv, "venv", "-q", "-p", python312, str(venv)], check=True)
            subprocess.run([*uv, "pip", "install", "-q", "-p", str(python), OFFICIAL_SDK], check=True)
    return str(python)
