"""``plugdock validate`` lists every file's problems in one run (issue 17 item 5), walked as a user does.

One mistake each in the manifest, the provider and a tool took four runs when a file that failed validation
stopped the walk: an invalid manifest hid its providers, an invalid provider its tools.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from plugdock.cli.main import cli

from conftest import make_plugin


def validate(folder: Path) -> tuple[int, list[dict[str, object]]]:
    result = CliRunner().invoke(cli, ["validate", str(folder), "--json"])
    return result.exit_code, json.loads(result.output)["problems"]


def break_three_files(root: Path) -> None:
    manifest = root / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("author: tester", "author: Tester!"))
    provider = root / "provider" / "demo.yaml"
    provider.write_text(provider.read_text().replace("  icon: icon.svg", "  icon: [icon.svg]"))
    tool = root / "tools" / "demo.yaml"
    tool.write_text(tool.read_text().replace("    type: string", "    type: strng"))


def test_one_run_lists_the_manifest_provider_and_tool_mistakes(tmp_path: Path) -> None:
    root = make_plugin(tmp_path / "demo")
    break_three_files(root)
    code, problems = validate(root)
    assert code == 1
    where = {(p["file"], p["field"]) for p in problems if p["severity"] == "error"}
    assert where == {("manifest.yaml", "author"), ("provider/demo.yaml", "identity.icon"),
                     ("tools/demo.yaml", "parameters[0].type")}, problems
    text = CliRunner().invoke(cli, ["validate", str(root)]).output
    assert "manifest.yaml:3:9: author:" in text and "tools/demo.yaml:" in text and "provider/demo.yaml:" in text


def test_a_missing_file_named_by_an_invalid_manifest_is_still_reported(tmp_path: Path) -> None:
    root = make_plugin(tmp_path / "demo")
    manifest = root / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("version: 0.0.1\ntype", "version: one\ntype")
                        .replace("provider/demo.yaml", "provider/missing.yaml"))
    code, problems = validate(root)
    messages = [str(p["message"]) for p in problems]
    assert code == 1
    assert any("'provider/missing.yaml' does not exist" in m for m in messages), messages
    assert any(p["field"] == "version" for p in problems), problems


def test_fixing_them_one_by_one_leaves_a_valid_plugin(tmp_path: Path) -> None:
    root = make_plugin(tmp_path / "demo")
    break_three_files(root)
    for path, wrong, right in (("manifest.yaml", "Tester!", "tester"), ("provider/demo.yaml", "[icon.svg]", "icon.svg"),
                               ("tools/demo.yaml", "strng", "string")):
        (root / path).write_text((root / path).read_text().replace(wrong, right))
    assert validate(root) == (0, [])
