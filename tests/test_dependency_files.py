"""A package with pyproject.toml (and uv.lock) but no requirements.txt installs, as in the official daemon."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from daemon_harness import DaemonProcess
from plugdock.daemon.plugins.dependency_files import read_dependencies
from plugdock.daemon.plugins.requirements_policy import RequirementsRefused, check_requirements
from plugdock.packaging.build import collect_files
from plugdock.packaging.runtime_wheel import build_runtime_wheel
from plugdock.packaging.ship_runtime import ship_runtime
from plugdock.packaging.uv import uv_binary
from plugdock.packaging.zipfiles import write_zip

from conftest import make_plugin

WHEEL = build_runtime_wheel()
PROJECT = """[project]
name = "demo"
version = "0.0.1"
requires-python = ">=3.11"
dependencies = ["plugdock>=0.1"]
"""
needs_uv = pytest.mark.skipif(uv_binary() is None, reason="uv is not installed")


def project_package(root: Path, locked: bool) -> bytes:
    """What the official packager would leave: pyproject.toml (and uv.lock), no requirements.txt."""
    plugin = make_plugin(root)
    (plugin / "requirements.txt").unlink()
    (plugin / "pyproject.toml").write_text(PROJECT)
    files = dict(ship_runtime(collect_files(plugin)))
    if locked:
        unpacked = root.parent / f"{root.name}-lock"
        unpacked.mkdir()
        for name, content in files.items():
            (unpacked / name).parent.mkdir(parents=True, exist_ok=True)
            (unpacked / name).write_bytes(content)
        uv = uv_binary()
        assert uv is not None
        done = subprocess.run([uv, "lock", "-q"], cwd=unpacked, capture_output=True, text=True, check=False,
                              env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
        assert done.returncode == 0, done.stderr
        files["uv.lock"] = (unpacked / "uv.lock").read_bytes()
    assert "requirements.txt" not in files
    return write_zip(sorted(files.items()))


def unpack(data: bytes, folder: Path) -> Path:
    zipfile.ZipFile(io.BytesIO(data)).extractall(folder)
    return folder


def test_requirements_txt_is_read_first(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("six\n")
    (tmp_path / "pyproject.toml").write_text(PROJECT)
    found = read_dependencies(tmp_path)
    assert (found.source, found.origin) == (b"six\n", "requirements.txt")
    assert read_dependencies(tmp_path / "missing").source == b""


def test_a_pyproject_without_a_lock_gives_its_dependencies_and_shipped_wheels_pinned(tmp_path: Path) -> None:
    folder = unpack(project_package(tmp_path / "src", locked=False), tmp_path / "installed")
    found = read_dependencies(folder)
    assert found.origin == "pyproject.toml"
    assert found.source.decode().splitlines() == [f"plugdock-sdk @ ./{WHEEL.package_path} --hash=sha256:{WHEEL.sha256}"]
    checked = check_requirements(found.source, folder, origin=found.label)
    assert checked.wheels[0].wheel is not None


@needs_uv
def test_a_lock_is_exported_offline_with_every_hash(tmp_path: Path) -> None:
    folder = unpack(project_package(tmp_path / "src", locked=True), tmp_path / "installed")
    found = read_dependencies(folder)
    assert found.origin == "uv.lock"
    checked = check_requirements(found.source, folder, origin=found.label)
    names = {line.name for line in checked.lines}
    assert {"plugdock-sdk", "pydantic", "pyyaml"} <= names
    assert all(line.hashes for line in checked.lines)


def test_sources_other_than_a_wheel_inside_are_refused_naming_the_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PROJECT.replace("plugdock>=0.1", "lib") +
                                             '[tool.uv.sources]\nlib = { git = "https://example.com/lib" }\n')
    with pytest.raises(RequirementsRefused, match=r"tool.uv.sources.lib: only a path to a wheel inside the package"):
        read_dependencies(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[project\n")
    with pytest.raises(RequirementsRefused, match="pyproject.toml: not valid TOML"):
        read_dependencies(tmp_path)


def test_a_path_outside_the_package_is_left_to_the_policy_to_refuse(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(PROJECT.replace("plugdock>=0.1", "lib") +
                                             '[tool.uv.sources]\nlib = { path = "../lib-1.0-py3-none-any.whl" }\n')
    found = read_dependencies(tmp_path)
    with pytest.raises(RequirementsRefused, match=r"pyproject.toml \(dependencies\):1: `..` leaves the plugin folder"):
        check_requirements(found.source, tmp_path, origin=found.label)


@pytest.mark.slow
@needs_uv
@pytest.mark.parametrize("locked", [False, True], ids=["pyproject", "pyproject+uv.lock"])
def test_the_daemon_installs_and_runs_a_package_without_requirements_txt(tmp_path: Path, locked: bool) -> None:
    package = project_package(tmp_path / "src", locked)
    daemon = DaemonProcess(tmp_path / "home").start()
    try:
        identifier = daemon.upload(package)
        started = daemon.data(daemon.client.post("/plugin/t1/management/install/identifiers", json={
            "plugin_unique_identifiers": [identifier], "source": "package", "metas": [{}]}))
        task = daemon.finished_task(started["task_id"])
        assert task["status"] == "success", task["plugins"][0]["message"]
        events = daemon.dispatch("tool/invoke", "tester/demo", {"provider": "demo", "tool": "demo", "credentials": {},
                                                                "tool_parameters": {"text": "hi"}})
        assert events[0]["data"]["message"] == {"text": "hi"}, events
    finally:
        daemon.stop()
