"""Trigger plugins through the loader: events followed from the provider, cross-file rules, the daemon's
declaration shape, and the official trigger plugins of the catalogue as ground truth."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from plugdock.schema import DirectorySource, load_plugin
from plugdock.schema.declaration import plugin_declaration

OFFICIAL = Path("/work/.mirror/langgenius+dify-official-plugins/repo")
MANIFEST = """version: 0.0.1
type: plugin
author: tester
name: demo_trigger
label:
  en_US: Demo
description:
  en_US: Demo
icon: icon.svg
resource:
  memory: 1048576
plugins:
  triggers:
    - provider/demo.yaml
{extra}meta:
  version: 0.0.1
  arch: [amd64]
  runner:
    language: python
    version: "3.12"
    entrypoint: main
created_at: 2024-01-01T00:00:00Z
"""
PROVIDER = """identity:
  author: tester
  name: demo
  label:
    en_US: Demo
  description:
    en_US: Demo
  icon: icon.svg
subscription_schema:
  secret:
    type: secret-input
    label:
      en_US: Secret
subscription_constructor:
  credentials_schema:
    api_key:
      type: secret-input
      label:
        en_US: Key
events:
  - events/opened.yaml
  - events/opened_again.yaml
extra:
  python:
    source: provider/demo.py
"""
EVENT = """identity:
  author: tester
  name: opened
  label:
    en_US: Opened
description:
  en_US: Opened
extra:
  python:
    source: events/opened.py
"""


def _plugin(root: Path, extra: str = "") -> Path:
    for rel, text in {"manifest.yaml": MANIFEST.format(extra=extra), "provider/demo.yaml": PROVIDER,
                      "events/opened.yaml": EVENT, "events/opened_again.yaml": EVENT, "main.py": "",
                      "provider/demo.py": "", "events/opened.py": "", "_assets/icon.svg": "<svg/>",
                      "tools/t.yaml": "x: 1\n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_events_loaded_and_duplicates_named(tmp_path: Path) -> None:
    plugin = load_plugin(DirectorySource(_plugin(tmp_path)))
    assert plugin.trigger_provider is not None and [e.identity.name for e in plugin.events] == ["opened", "opened"]
    assert [str(p) for p in plugin.errors] == [
        "provider/demo.yaml:21:3: events: event name 'opened' is declared more than once (the official SDK refuses"
        " to start: 'Event is already registered')"]


def test_trigger_with_another_kind_is_refused(tmp_path: Path) -> None:
    plugin = load_plugin(DirectorySource(_plugin(tmp_path, "  tools:\n    - tools/t.yaml\n")))
    assert any("triggers cannot be declared together with tools" in str(p) for p in plugin.errors)


def test_declaration_has_the_daemon_shape(tmp_path: Path) -> None:
    root = _plugin(tmp_path)
    (root / "provider/demo.yaml").write_text(PROVIDER.replace("  - events/opened_again.yaml\n", ""))
    plugin = load_plugin(DirectorySource(root))
    assert plugin.ok, plugin.problems
    trigger = plugin_declaration(plugin)["trigger"]
    assert trigger["subscription_schema"][0]["name"] == "secret"
    assert trigger["subscription_constructor"]["credentials_schema"][0]["name"] == "api_key"
    assert trigger["subscription_constructor"]["parameters"] == []
    assert trigger["identity"]["tags"] == []
    assert trigger["events"] == [{"identity": {"author": "tester", "name": "opened", "label": {"en_US": "Opened"}},
                                  "description": {"en_US": "Opened"}, "parameters": []}]
    assert "extra" not in trigger


def _official(name: str, target: Path) -> Path:
    files = subprocess.run(["git", "-C", str(OFFICIAL), "ls-tree", "-r", "HEAD", "--name-only", f"triggers/{name}"],
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        out = target / rel.removeprefix(f"triggers/{name}/")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(subprocess.run(["git", "-C", str(OFFICIAL), "show", f"HEAD:{rel}"], capture_output=True,
                                       check=True).stdout)
    return target


@pytest.mark.skipif(not OFFICIAL.exists() or shutil.which("git") is None, reason="no official plugins mirror")
@pytest.mark.parametrize("name", ["rsshub_trigger", "github_trigger", "gmail_trigger", "slack_trigger"])
def test_official_trigger_plugins_validate(tmp_path: Path, name: str) -> None:
    plugin = load_plugin(DirectorySource(_official(name, tmp_path / name)))
    assert plugin.ok, [str(p) for p in plugin.errors]
    declaration = plugin_declaration(plugin)["trigger"]
    assert declaration["events"] and all("extra" not in e for e in declaration["events"])


def test_a_constructor_without_its_class_is_a_warning(tmp_path: Path) -> None:
    root = _plugin(tmp_path)
    (root / "provider/demo.yaml").write_text(PROVIDER.replace("  - events/opened_again.yaml\n", ""))
    (root / "provider/demo.py").write_text("from plugdock.sdk import Trigger\n\n\nclass T(Trigger):\n    pass\n")
    plugin = load_plugin(DirectorySource(root))
    assert plugin.ok
    assert [p.message for p in plugin.problems if "TriggerSubscriptionConstructor" in p.message] == [
        "provider/demo.py defines no TriggerSubscriptionConstructor subclass, which a subscription_constructor "
        "needs (both SDKs refuse to start)"]
