"""Whole-plugin checks: the manifest is followed to every file, and cross-file rules are enforced."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from plugdock.packaging.ignore import ignore_filter
from plugdock.schema.plugin import DirectorySource, load_plugin

from conftest import KINDS, make_plugin


def load(root: Path):  # type: ignore[no-untyped-def]
    return load_plugin(DirectorySource(root, exclude=ignore_filter(root)))


def messages(root: Path) -> list[str]:
    return [str(p) for p in load(root).problems]


@pytest.mark.parametrize(("kind", "method"), KINDS)
def test_every_template_loads_cleanly(tmp_path: Path, kind: str, method: str) -> None:
    root = make_plugin(tmp_path / "p", kind=kind, model_method=method)
    plugin = load(root)
    assert plugin.problems == []
    assert plugin.ok
    assert plugin.manifest is not None
    assert plugin.manifest.category == kind
    assert "main.py" in plugin.python_sources


def test_tool_plugin_contents(tool_plugin: Path) -> None:
    plugin = load(tool_plugin)
    assert plugin.tool_provider is not None
    assert [t.identity.name for t in plugin.tools] == ["demo"]
    assert plugin.files["tool:demo"] == "tools/demo.yaml"
    assert set(plugin.python_sources) == {"main.py", "provider/demo.py", "tools/demo.py"}


def test_model_plugin_reads_globs_and_positions(tmp_path: Path) -> None:
    root = make_plugin(tmp_path / "m", kind="model")
    plugin = load(root)
    assert [m.model for m in plugin.models] == ["demo-echo"]
    assert plugin.positions == {"llm": ["demo-echo"]}


def test_missing_tool_file_is_reported_where_it_is_referenced(tool_plugin: Path) -> None:
    (tool_plugin / "tools" / "demo.yaml").unlink()
    assert "provider/demo.yaml:13:5: tools[0]: tool file 'tools/demo.yaml' does not exist in the plugin" in messages(
        tool_plugin
    )


def test_missing_provider_file(tool_plugin: Path) -> None:
    (tool_plugin / "provider" / "demo.yaml").unlink()
    assert any(
        m.startswith("manifest.yaml:20:7: plugins.tools[0]: tool provider file 'provider/demo.yaml' does not exist")
        for m in messages(tool_plugin)
    )


def test_file_excluded_by_difyignore_counts_as_missing(tool_plugin: Path) -> None:
    (tool_plugin / ".difyignore").write_text("tools/\n")
    assert any("tool file 'tools/demo.yaml' does not exist" in m for m in messages(tool_plugin))


def test_path_traversal_in_reference(tool_plugin: Path) -> None:
    text = (tool_plugin / "manifest.yaml").read_text().replace("provider/demo.yaml", "../outside.yaml")
    (tool_plugin / "manifest.yaml").write_text(text)
    assert any("must be relative to the plugin root, without '..'" in m for m in messages(tool_plugin))


def test_absolute_python_source(tool_plugin: Path) -> None:
    path = tool_plugin / "tools" / "demo.yaml"
    path.write_text(path.read_text().replace("source: tools/demo.py", "source: /etc/passwd"))
    assert any(
        "tools/demo.yaml:" in m and "source path '/etc/passwd' must be relative" in m for m in messages(tool_plugin)
    )


def test_missing_icon(tool_plugin: Path) -> None:
    (tool_plugin / "_assets" / "icon.svg").unlink()
    found = messages(tool_plugin)
    assert "manifest.yaml:9:7: icon: icon 'icon.svg' is not in _assets/" in found
    assert "provider/demo.yaml:8:9: identity.icon: icon 'icon.svg' is not in _assets/" in found


def test_missing_entrypoint_and_sources(tool_plugin: Path) -> None:
    (tool_plugin / "main.py").unlink()
    (tool_plugin / "tools" / "demo.py").unlink()
    found = messages(tool_plugin)
    assert any("entrypoint 'main' needs the file 'main.py', which is missing" in m for m in found)
    assert any("tools/demo.yaml:" in m and "Python source 'tools/demo.py' does not exist" in m for m in found)


def test_python_syntax_error_is_located(tool_plugin: Path) -> None:
    (tool_plugin / "tools" / "demo.py").write_text("def broken(:\n    pass\n")
    assert any(m.startswith("tools/demo.py:1:") and "Python syntax error" in m for m in messages(tool_plugin))


def test_tools_and_models_together_are_refused(tmp_path: Path) -> None:
    tool = make_plugin(tmp_path / "t")
    model = make_plugin(tmp_path / "m", kind="model")
    for sub in ("models", "provider"):
        shutil.copytree(model / sub, tool / sub, dirs_exist_ok=True)
    text = (
        (tool / "manifest.yaml")
        .read_text()
        .replace(
            "plugins:\n  tools:\n    - provider/demo.yaml\n",
            "plugins:\n  tools:\n    - provider/demo.yaml\n  models:\n    - provider/demo.yaml\n",
        )
    )
    (tool / "manifest.yaml").write_text(text)
    assert any("models cannot be declared together with tools" in m for m in messages(tool))


def test_two_providers_of_one_kind(tool_plugin: Path) -> None:
    text = (
        (tool_plugin / "manifest.yaml")
        .read_text()
        .replace("    - provider/demo.yaml\n", "    - provider/demo.yaml\n    - provider/demo.yaml\n")
    )
    (tool_plugin / "manifest.yaml").write_text(text)
    assert any("a plugin declares at most one tools provider; found 2" in m for m in messages(tool_plugin))


def test_endpoints_need_endpoint_permission(tmp_path: Path) -> None:
    root = make_plugin(tmp_path / "e", kind="extension")
    text = (
        (root / "manifest.yaml")
        .read_text()
        .replace("endpoint:\n      enabled: true", "endpoint:\n      enabled: false")
    )
    (root / "manifest.yaml").write_text(text)
    assert any(
        "resource.permission: the plugin declares endpoints, so resource.permission.endpoint.enabled" in m
        for m in messages(root)
    )


def test_agent_strategy_without_permissions_warns(tmp_path: Path) -> None:
    root = make_plugin(tmp_path / "a", kind="agent-strategy")
    text = (root / "manifest.yaml").read_text().replace("llm: true", "llm: false")
    (root / "manifest.yaml").write_text(text)
    plugin = load(root)
    assert plugin.ok  # warnings only
    assert any("enable model.llm" in str(p) and p.severity == "warning" for p in plugin.problems)


def test_unquoted_python_version_keeps_its_text(tool_plugin: Path) -> None:
    """Go's YAML decoder fills string fields with the source text; so do we (3.10 is not 3.1)."""
    text = (tool_plugin / "manifest.yaml").read_text().replace('version: "3.12"', "version: 3.10")
    (tool_plugin / "manifest.yaml").write_text(text)
    plugin = load(tool_plugin)
    assert plugin.ok and plugin.manifest is not None
    assert plugin.manifest.meta.runner.version == "3.10"


def test_duplicate_tool_names(tool_plugin: Path) -> None:
    shutil.copy(tool_plugin / "tools" / "demo.yaml", tool_plugin / "tools" / "again.yaml")
    text = (
        (tool_plugin / "provider" / "demo.yaml")
        .read_text()
        .replace("  - tools/demo.yaml\n", "  - tools/demo.yaml\n  - tools/again.yaml\n")
    )
    (tool_plugin / "provider" / "demo.yaml").write_text(text)
    assert any("tool name 'demo' is declared more than once" in m for m in messages(tool_plugin))


def test_model_glob_matching_nothing(tmp_path: Path) -> None:
    root = make_plugin(tmp_path / "m", kind="model")
    (root / "models" / "llm" / "demo-echo.yaml").unlink()
    assert any("no model file matches 'models/llm/*.yaml'" in m for m in messages(root))


def test_all_problems_reported_at_once(tool_plugin: Path) -> None:
    (tool_plugin / "_assets" / "icon.svg").unlink()
    (tool_plugin / "tools" / "demo.py").unlink()
    (tool_plugin / "main.py").unlink()
    assert len(load(tool_plugin).errors) >= 4


def test_missing_manifest(tmp_path: Path) -> None:
    assert messages(tmp_path) == [f"{tmp_path}: manifest file 'manifest.yaml' does not exist in the plugin"]
