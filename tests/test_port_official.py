"""``plugdock port`` yields a package that starts (issue 17 item 1), walked as a user does.

An official-shaped plugin (tools/json_process-like: pyproject.toml and uv.lock depending on dify_plugin, no
requirements.txt) is ported, validated, packaged and installed in a real daemon, then invoked. Before, the port
rewrote only the imports: the package exported ``dify-plugin`` from the stale lock, installed, and failed at the
first call with ``No module named 'plugdock'``. ``validate`` and ``package`` now refuse such a half-ported plugin
at the import's line.
"""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from daemon_harness import DaemonProcess
from plugdock.cli import porting
from plugdock.cli.main import cli
from plugdock.cli.porting import port_pyproject, port_requirements
from plugdock.schema.imports_check import import_problems
from plugdock.schema.plugin import DirectorySource

MANIFEST = """version: 0.0.2
type: plugin
author: yamlist
name: yaml_tools
label:
  en_US: YAML Tools
description:
  en_US: Parse YAML into JSON
icon: icon.svg
resource:
  memory: 268435456
  permission:
    tool:
      enabled: true
plugins:
  tools:
  - provider/yaml_tools.yaml
meta:
  version: 0.0.1
  arch: [amd64, arm64]
  runner:
    language: python
    version: '3.12'
    entrypoint: main
created_at: '2024-09-20T08:03:44.658609186Z'
"""
PROVIDER = """identity:
  author: yamlist
  name: yaml_tools
  label:
    en_US: YAML Tools
  description:
    en_US: Parse YAML into JSON
  icon: icon.svg
tools:
- tools/parse.yaml
extra:
  python:
    source: provider/yaml_tools.py
"""
PROVIDER_PY = """from typing import Any
from dify_plugin import ToolProvider


class YamlToolsProvider(ToolProvider):
    def _validate_credentials(self, credentials: dict[str, Any]) -> None:
        pass
"""
TOOL = """identity:
  name: parse
  author: yamlist
  label:
    en_US: Parse YAML
description:
  human:
    en_US: Parse a YAML document
  llm: Parses a YAML document into JSON
parameters:
- name: content
  type: string
  required: true
  form: llm
  label:
    en_US: YAML
  human_description:
    en_US: The YAML text
  llm_description: The YAML text
extra:
  python:
    source: tools/parse.py
"""
TOOL_PY = """from collections.abc import Generator
from typing import Any

import yaml
from dify_plugin.entities.tool import ToolInvokeMessage
from dify_plugin import Tool


class ParseTool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        yield self.create_json_message({"parsed": yaml.safe_load(tool_parameters["content"])})
"""
MAIN = """from dify_plugin import Plugin, DifyPluginEnv

plugin = Plugin(DifyPluginEnv(MAX_REQUEST_TIMEOUT=120))

if __name__ == '__main__':
    plugin.run()
"""
PYPROJECT = """[project]
name = "yaml_tools"
version = "0.1.0"
requires-python = ">=3.11"

# Refresh the lockfile with: uv lock
dependencies = [
    "dify_plugin>=0.9.0",
    "pyyaml>=6.0",
]

[dependency-groups]
dev = []
"""
LOCK = """version = 1
revision = 3
requires-python = ">=3.11"

[[package]]
name = "dify-plugin"
version = "0.9.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "pyyaml"
version = "6.0.2"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "yaml-tools"
version = "0.1.0"
source = { virtual = "." }
dependencies = [
    { name = "dify-plugin" },
    { name = "pyyaml" },
]
"""
ICON = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"/>\n'


def official_plugin(root: Path) -> Path:
    files = {"manifest.yaml": MANIFEST, "provider/yaml_tools.yaml": PROVIDER, "provider/yaml_tools.py": PROVIDER_PY,
             "tools/parse.yaml": TOOL, "tools/parse.py": TOOL_PY, "main.py": MAIN, "pyproject.toml": PYPROJECT,
             "uv.lock": LOCK, "_assets/icon.svg": ICON, ".difyignore": ".venv/\n__pycache__/\n"}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def fake_uv(tmp: Path, script: str) -> str:
    path = tmp / "fake-uv"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -- the dependency files ------------------------------------------------------------------------------------


def test_requirements_and_pyproject_name_plugdock_with_their_layout_kept() -> None:
    assert port_requirements("dify_plugin>=0.2.0,<0.3.0\nrequests  # http\n") == "plugdock>=0.1\nrequests  # http\n"
    assert port_requirements("dify-plugin==0.9.0 ; python_version >= '3.11'  # sdk\n") == (
        "plugdock>=0.1; python_version >= '3.11'  # sdk\n")
    ported = port_pyproject(PYPROJECT)
    assert ported == PYPROJECT.replace('"dify_plugin>=0.9.0"', '"plugdock>=0.1"')
    assert tomllib.loads(ported)["project"]["dependencies"] == ["plugdock>=0.1", "pyyaml>=6.0"]
    assert port_pyproject(ported) == ported
    assert port_pyproject(ported, to="dify") == PYPROJECT.replace('"dify_plugin>=0.9.0"', '"dify_plugin>=0.10,<0.11"')
    assert port_requirements("plugdock>=0.1\nplugdock-sdk\n", to="dify") == (
        "dify_plugin>=0.10,<0.11\ndify_plugin>=0.10,<0.11\n")


def test_dry_run_shows_every_change_as_a_diff_and_writes_nothing(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root = official_plugin(tmp_path / "yaml_tools")
    before = snapshot(root)
    monkeypatch.setattr(porting, "uv_binary", lambda: fake_uv(tmp_path, "echo 'error: no index serves plugdock' >&2\n"
                                                                        "exit 2\n"))
    code, out, err = run("port", str(root), "--dry-run")
    assert code == 0, err
    assert snapshot(root) == before
    for rel in ("main.py", "provider/yaml_tools.py", "tools/parse.py", "pyproject.toml"):
        assert f"--- a/{rel}\n+++ b/{rel}\n" in out
    assert "\n-from dify_plugin import Tool\n" in out and "\n+from plugdock.sdk import Tool\n" in out
    assert '-    "dify_plugin>=0.9.0",\n+    "plugdock>=0.1",\n' in out
    assert "--- a/uv.lock\n+++ /dev/null\n" in out
    assert "warning: uv.lock: removed: `uv lock` failed: no index serves plugdock" in err
    assert "5 file(s) to change" in err


def test_a_lock_uv_can_refresh_is_refreshed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = official_plugin(tmp_path / "yaml_tools")
    relocked = LOCK.replace('name = "dify-plugin"\nversion = "0.9.0"', 'name = "plugdock"\nversion = "0.1.0"')
    (tmp_path / "new.lock").write_text(relocked)
    monkeypatch.setattr(porting, "uv_binary", lambda: fake_uv(tmp_path, f"cp {tmp_path / 'new.lock'} uv.lock\n"))
    code, out, err = run("port", str(root))
    assert code == 0, err
    assert "rewrote uv.lock" in out and "warning" not in err
    assert (root / "uv.lock").read_text() == relocked


# -- validate and package refuse what would not start --------------------------------------------------------


def test_a_half_ported_plugin_is_refused_at_the_import_line(tmp_path: Path) -> None:
    root = official_plugin(tmp_path / "yaml_tools")
    for rel in ("main.py", "provider/yaml_tools.py", "tools/parse.py"):  # the imports alone, as the old port did
        (root / rel).write_text((root / rel).read_text().replace("from dify_plugin.entities.tool import",
                                                                 "from plugdock.sdk import")
                                .replace("from dify_plugin import", "from plugdock.sdk import"))
    code, out, _ = run("validate", str(root))
    assert code == 1
    assert "tools/parse.py:5:1: imports plugdock, which pyproject.toml and uv.lock do not name" in out
    assert "main.py:1:1: imports plugdock" in out
    code, out, err = run("package", str(root), "-o", str(tmp_path / "p.difypkg"))
    assert code == 1 and "tools/parse.py:5:1: imports plugdock" in out + err
    assert not (tmp_path / "p.difypkg").exists()


def test_imports_are_checked_against_what_the_requirements_install(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "tools").mkdir(parents=True)
    (root / "requirements.txt").write_text("plugdock>=0.1\n")
    (root / "tools" / "helpers.py").write_text("VALUE = 1\n")
    (root / "tools" / "t.py").write_text(
        "import json, os.path\nimport yaml\nimport pydantic\nfrom tools.helpers import VALUE\nfrom . import x\n"
        "import requests\nimport nosuch_module_xyz\ntry:\n    import orjson\nexcept ImportError:\n    orjson = None\n")
    found = {(p.line, p.severity): p.message for p in import_problems(DirectorySource(root))}
    assert set(found) == {(6, "error"), (7, "warning")}, found  # yaml and pydantic come with plugdock
    assert found[6, "error"].startswith("imports requests (distribution requests), which requirements.txt does not")
    assert "nosuch_module_xyz" in found[7, "warning"]
    (root / "requirements.txt").write_text("plugdock>=0.1\nrequests\nnosuch-module-xyz\n")
    assert import_problems(DirectorySource(root)) == []


def test_importing_plugdock_when_a_lock_installs_neither_sdk_is_an_error(tmp_path: Path) -> None:
    """A pyproject and uv.lock that name no SDK install exactly what they list: ``import plugdock`` is certain to
    fail; with a requirements.txt, what its lines bring is known only from this machine, so it stays a warning."""
    root = tmp_path / "p"
    root.mkdir()
    (root / "main.py").write_text("from plugdock.sdk import Plugin\n")
    (root / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "0.1"\ndependencies = ["six"]\n')
    (root / "uv.lock").write_text('version = 1\n\n[[package]]\nname = "six"\nversion = "1.17.0"\n')
    (problem,) = import_problems(DirectorySource(root))
    assert problem.severity == "error" and problem.message.startswith("imports plugdock, which pyproject.toml and "
                                                                      "uv.lock do not name")
    (root / "pyproject.toml").unlink()
    (root / "uv.lock").unlink()
    for requirements in ("nosuch-dist-xyz\n", "werkzeug>=3.0\n"):  # unknown, or known only from this machine
        (root / "requirements.txt").write_text(requirements)
        (problem,) = import_problems(DirectorySource(root))
        assert problem.severity == "warning"


# -- the whole path, through a real daemon -------------------------------------------------------------------


@pytest.mark.slow
def test_port_package_install_invoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = official_plugin(tmp_path / "yaml_tools")
    failing = fake_uv(tmp_path, "echo 'error: plugdock not found' >&2\nexit 1\n")
    monkeypatch.setattr(porting, "uv_binary", lambda: failing)
    code, out, err = run("port", str(root))
    assert code == 0, err
    assert not (root / "uv.lock").exists() and "warning: uv.lock: removed" in err
    assert "plugdock>=0.1" in (root / "pyproject.toml").read_text() and "dify_plugin" not in (root / "pyproject.toml"
                                                                                              ).read_text()
    code, out, err = run("validate", str(root), "--strict")
    assert code == 0, out + err
    package = tmp_path / "yaml_tools.difypkg"
    code, out, err = run("package", str(root), "-o", str(package))
    assert code == 0, out + err
    daemon = DaemonProcess(tmp_path / "home").start()
    try:
        identifier = daemon.upload(package.read_bytes())
        started = daemon.data(daemon.client.post("/plugin/t1/management/install/identifiers", json={
            "plugin_unique_identifiers": [identifier], "source": "package", "metas": [{}]}))
        if not started["all_installed"]:
            task = daemon.finished_task(started["task_id"])
            assert task["status"] == "success", task["plugins"][0]["message"]
        events = daemon.dispatch("tool/invoke", "yamlist/yaml_tools", {
            "provider": "yaml_tools", "tool": "parse", "credentials": {},
            "tool_parameters": {"content": "city: Berlin\ndays: [1, 2]\n"}})
    finally:
        daemon.stop()
    messages = [e["data"]["message"] for e in events]
    assert messages == [{"json_object": {"parsed": {"city": "Berlin", "days": [1, 2]}}}], json.dumps(events)[:2000]


def test_porting_a_folder_that_is_not_a_plugin_is_refused(tmp_path: Path) -> None:
    """A wrong folder holds no manifest.yaml: one line, nothing rewritten (its stray .py files stay as they are)."""
    (tmp_path / "stray.py").write_text("from dify_plugin import Tool\n")
    code, _, err = run("port", str(tmp_path))
    assert code == 1 and err.strip() == f"error: {tmp_path} holds no manifest.yaml: name the plugin folder (the " \
                                         "one with manifest.yaml) to port"
    assert (tmp_path / "stray.py").read_text() == "from dify_plugin import Tool\n"
