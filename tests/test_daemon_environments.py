"""Finding interpreters for a plugin's runner version (naming every place searched when none fits), and building
environments: from checked copies of shipped wheels, reused, with short errors, as the builder uid under root."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from daemon_harness import enterable
from plugdock.daemon.plugins.environments import EnvironmentBuildError, EnvironmentManager, find_interpreter
from plugdock.daemon.plugins.requirements_policy import CheckedRequirements, check_requirements
from plugdock.daemon.plugins.sandbox import Sandbox, home_tag
from plugdock.daemon.state.db import Database
from plugdock.daemon.state.plugin_users import PluginUsers
from test_security_requirements import make_wheel


def test_finds_the_running_python_by_version() -> None:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    found = find_interpreter(version)
    assert "python" in found
    assert find_interpreter(version) == found  # remembered


def test_a_missing_version_names_every_place_searched() -> None:
    with pytest.raises(EnvironmentBuildError) as caught:
        find_interpreter("2.5")
    message = str(caught.value)
    assert "no Python 2.5 interpreter found" in message
    for place in ("python2.5 on PATH", "pyenv (", "uv python find", "meta.runner.version 2.5", "pyenv install 2.5"):
        assert place in message


# -- building -----------------------------------------------------------------------------------------------
def _manager(home: Path, sandbox: Sandbox | None) -> EnvironmentManager:
    home.mkdir(parents=True, exist_ok=True)
    return EnvironmentManager(home, Database(f"sqlite:///{home / 'db.sqlite'}"), sandbox=sandbox)


def _shipped(plugin: Path) -> CheckedRequirements:
    wheel = make_wheel(plugin / "wheels", "tinyprobe", "1.0", {"tinyprobe/__init__.py": "VALUE = 'shipped'\n"})
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return check_requirements(f"./wheels/{wheel.name} --hash=sha256:{digest}\n".encode(), plugin)


def test_builds_a_shipped_wheel_from_its_checked_copy_and_reuses_the_environment(tmp_path: Path) -> None:
    envs = _manager(tmp_path / "home", None)
    requirements = _shipped(tmp_path / "plugin")
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    env = envs.ensure(requirements, version)
    value = subprocess.run([str(env.python), "-c", "import tinyprobe; print(tinyprobe.VALUE)"], capture_output=True,
                           text=True, check=True).stdout.strip()
    assert value == "shipped"
    said: list[str] = []
    assert envs.ensure(requirements, version, said.append).path == env.path
    assert said == [f"reusing environment {env.id[:12]} (same dependencies)"]
    assert list((tmp_path / "home" / "build").glob("*.work")) == []  # copies and temp files are gone


@pytest.mark.parametrize("declared", ["3.11", "2.5"])
def test_a_runner_version_the_dependencies_refuse_builds_with_3_12_as_the_official_daemon(
        tmp_path: Path, declared: str) -> None:
    """Official packages declare meta.runner.version "3.10" and require dify-plugin (Python>=3.12): the official
    daemon builds every plugin with 3.12, so plugdock falls back to it where the declared version cannot serve —
    its dependencies refuse it (3.11 here) or no interpreter of it exists (2.5) — and says so."""
    plugin = tmp_path / "plugin"
    wheel = make_wheel(plugin / "wheels", "newonly", "1.0", {"newonly/__init__.py": "import sys\n"}, ">=3.12")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    requirements = check_requirements(f"./wheels/{wheel.name} --hash=sha256:{digest}\n".encode(), plugin)
    said: list[str] = []
    env = _manager(tmp_path / "home", None).ensure_for_runner(requirements, declared, said.append)
    version = subprocess.run([str(env.python), "-c", "import newonly, sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version == "(3, 12)"
    why = "its dependencies need a newer Python" if declared == "3.11" else "no interpreter of it is on this machine"
    assert f"meta.runner.version {declared}: {why}; building with Python 3.12, as the official daemon builds " \
           "every plugin" in said


def test_a_runner_version_the_dependencies_accept_is_kept(tmp_path: Path) -> None:
    env = _manager(tmp_path / "home", None).ensure_for_runner(_shipped(tmp_path / "plugin"), "3.11")
    version = subprocess.run([str(env.python), "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version == "(3, 11)"


def test_a_failed_install_names_the_line_and_never_echoes_the_output(tmp_path: Path) -> None:
    envs = _manager(tmp_path / "home", None)
    requirements = check_requirements(b"six\nplugdock-no-such-project-here==9.9.9\n", tmp_path)
    with pytest.raises(EnvironmentBuildError) as caught:
        envs.ensure(requirements, f"{sys.version_info[0]}.{sys.version_info[1]}")
    message = caught.value.message
    assert message.startswith("failed to install the dependencies (uv exited 1); requirements.txt:2 "
                              "(plugdock-no-such-project-here)")
    assert all(line.startswith(("failed", "error:", "cause:", "hint:", "help:", "×", "╰─▶")) or
               line.lower().startswith("caused by:") for line in message.splitlines())


@pytest.mark.skipif(os.geteuid() != 0, reason="the builder uid exists only as root")
def test_as_root_uv_runs_as_the_builder_and_the_environment_comes_back_to_root(tmp_path: Path) -> None:
    home = tmp_path / "home"
    enterable(home)
    db = Database(f"sqlite:///{home / 'db.sqlite'}")
    sandbox = Sandbox(home, "process", users=PluginUsers(db, 360000, home_tag(home)))
    sandbox.lock_down_home()
    envs = EnvironmentManager(home, db, sandbox=sandbox)
    env = envs.ensure(_shipped(tmp_path / "plugin"), f"{sys.version_info[0]}.{sys.version_info[1]}")
    builder = sandbox.builder_uid
    assert builder is not None and os.stat(home / "build" / "uv-cache").st_uid == builder
    # uv wrote the environment as the builder (its cache is the builder's); now every entry is root's
    assert [p for p in [env.path, *env.path.rglob("*")] if os.lstat(p).st_uid != 0] == []
    assert not [p for p in env.path.rglob("*") if not p.is_symlink() and p.stat().st_mode & 0o022]
    assert any(os.lstat(p).st_uid == builder for p in (home / "build" / "uv-cache").rglob("*"))
