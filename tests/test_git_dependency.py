"""Issue 16 (tools/monday): a requirement fetched from a git host, ``name @ git+https://github.com/…@tag``.

Refused by default, naming the operator's setting; with ``PLUGDOCK_ALLOW_DIRECT_URLS`` and
``PLUGDOCK_ALLOW_SDISTS`` it installs and the plugin imports it. The git host is :mod:`fake_git`, Git's own
smart HTTP server on loopback, because github.com is out of reach here; uv fetches from it with the git CLI as
it would from GitHub. Both dependency files monday could carry are walked: ``requirements.txt``, and
``pyproject.toml`` with a ``uv.lock`` pinning the commit (the daemon exports the lock offline)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon_harness import DaemonProcess
from fake_git import GitServer
from plugdock.packaging.build import build_package

from conftest import make_plugin

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent

PACKAGE = {
    "pyproject.toml": '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
                      '[project]\nname = "tinygit"\nversion = "1.0"\n',
    "tinygit/__init__.py": 'WHERE = "fetched over git"\n',
}
TOOL = '''from collections.abc import Generator
from typing import Any

import tinygit

from plugdock.sdk import Tool, ToolInvokeMessage


class DemoTool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        yield self.create_text_message(tinygit.WHERE)
'''


def opt_in(git: GitServer) -> dict[str, str]:
    """The operator's settings for such builds; the allow-list lets plugin and build uids reach the git host,
    which sits on loopback here (github.com is not local, so a real one needs no entry)."""
    return {"PLUGDOCK_ALLOW_DIRECT_URLS": "true", "PLUGDOCK_ALLOW_SDISTS": "true",
            "PLUGDOCK_PLUGIN_NETWORK_ALLOW": git.url.removeprefix("http://")}


@pytest.fixture
def git(tmp_path: Path) -> GitServer:
    with GitServer(tmp_path / "git") as server:
        server.publish("owner/tinygit.git", PACKAGE, "v1.0")
        yield server  # type: ignore[misc]


def _plugin(root: Path, git: GitServer) -> Path:
    plugin = make_plugin(root)
    (plugin / "tools" / "demo.py").write_text(TOOL)
    return plugin


def _answer(d: DaemonProcess, identifier: str) -> list[str]:
    chunks = d.dispatch("tool/invoke", identifier.split(":")[0], {"provider": "demo", "tool": "demo", "credentials": {},
                                                    "tool_parameters": {"text": "x"}})
    texts = [c["data"]["message"]["text"] for c in chunks if c.get("data") and c["data"].get("type") == "text"]
    return texts or [str(chunks)]


def assert_installs_and_imports(home: Path, plugin: Path, git: GitServer) -> None:
    """Under the operator's settings the plugin installs and its tool answers with what the git package says."""
    allowing = DaemonProcess(home, **opt_in(git)).start()
    try:
        identifier = allowing.install(plugin)
        assert _answer(allowing, identifier) == ["fetched over git"]
    finally:
        allowing.stop()


def _install_task(d: DaemonProcess, plugin: Path) -> dict[str, object]:
    identifier = d.upload(build_package(plugin).data)
    started = d.data(d.client.post("/plugin/t1/management/install/identifiers", json={
        "plugin_unique_identifiers": [identifier], "source": "package", "metas": [{}]}))
    return d.finished_task(started["task_id"])


def test_a_git_requirement_is_refused_by_default_and_installs_when_allowed(tmp_path: Path, git: GitServer) -> None:
    plugin = _plugin(tmp_path / "demo", git)
    with (plugin / "requirements.txt").open("a") as requirements:
        requirements.write(f"\ntinygit @ git+{git.url}/owner/tinygit.git@v1.0\n")
    strict = DaemonProcess(tmp_path / "strict").start()
    try:
        task = _install_task(strict, plugin)
        assert task["status"] == "failed"
        message = task["plugins"][0]["message"]  # type: ignore[index]
        assert "requirements.txt:" in message and "PLUGDOCK_ALLOW_DIRECT_URLS=true" in message
    finally:
        strict.stop()
    assert git.requests == []  # refused before anything was fetched
    assert_installs_and_imports(tmp_path / "allowing", plugin, git)
    assert any("git-upload-pack" in request for request in git.requests)


def test_a_locked_git_source_installs_from_pyproject_and_uv_lock(tmp_path: Path, git: GitServer) -> None:
    """monday's own shape: no requirements.txt, the git source in pyproject.toml and its commit in uv.lock."""
    plugin = _plugin(tmp_path / "demo", git)
    (plugin / "requirements.txt").unlink()
    (plugin / "pyproject.toml").write_text(  # plugdock from this checkout, as an author locks it from theirs
        '[project]\nname = "demo"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        f'dependencies = ["plugdock>=0.1", "tinygit @ git+{git.url}/owner/tinygit.git@v1.0"]\n'
        f'\n[tool.uv.sources]\nplugdock = {{ path = "{REPO}" }}\n')
    subprocess.run([sys.executable, "-m", "uv", "lock", "-q", "--directory", str(plugin)], check=True, timeout=300)
    assert f"git = \"{git.url}/owner/tinygit.git?rev=v1.0" in (plugin / "uv.lock").read_text()
    assert_installs_and_imports(tmp_path / "allowing", plugin, git)
