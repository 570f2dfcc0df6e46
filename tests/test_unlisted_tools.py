"""A tool no provider lists is a tool the daemon never serves: ``generate`` lists what it writes, ``validate`` warns.

The newcomer's path: write a ``@tool`` in ``tools/*.py``, run ``plugdock generate``, invoke it. Before, the YAML was
written but not listed under the provider's ``tools:``, ``validate`` said nothing, and the invoke answered
"Tool `typed_forecast` not found". The official daemon ignores such a file too, so this is a warning, not an error.
Also here: ``@tool(form=[...])``, the code's way to make a parameter ``form: form``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from plugdock.cli.typed_merge import merged_declaration, with_tools_listed
from plugdock.schema.plugin import DirectorySource, load_plugin
from plugdock.schema.unlisted_tools import typed_tool_names
from plugdock.sdk.typed import TypedToolError, tool

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NEW_TOOL = '''from typing import Literal

from plugdock.sdk.typed import tool


@tool(form=["unit"])
def shout(text: str, unit: Literal["loud", "louder"] = "loud") -> str:
    """Shout a text.

    Args:
        text: what to shout
        unit: how loud
    """
    return text.upper()
'''


def plugdock(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plugdock", *args], capture_output=True, text=True, check=False)


def warnings_of(root: Path) -> list[str]:
    plugin = load_plugin(DirectorySource(root))
    assert not plugin.errors, plugin.errors
    return [f"{p.file}: {p.message}" for p in plugin.problems if not p.is_error]


@pytest.fixture
def calculator(tmp_path: Path) -> Path:
    root = tmp_path / "calc"
    shutil.copytree(EXAMPLES / "typed_calculator", root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


PROVIDER = "provider/typed_calculator.yaml"


def test_generate_lists_the_yaml_it_writes_in_the_one_provider(calculator: Path) -> None:
    (calculator / "tools" / "shout.py").write_text(NEW_TOOL)
    provider = calculator / PROVIDER
    provider.write_text(provider.read_text().replace("tools:\n", "tools:  # what the daemon serves\n"))
    before = provider.read_text()
    [warning] = warnings_of(calculator)
    assert warning.startswith("tools/shout.py: the @tool 'shout' has no tool YAML that provider/typed_calculator")
    assert "`plugdock generate` writes tools/shout.yaml and lists it" in warning

    done = plugdock("generate", str(calculator))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "wrote tools/shout.yaml" in done.stdout
    assert f"listed tools/shout.yaml under tools: in {PROVIDER}" in done.stdout
    assert provider.read_text() == before.replace("  - tools/word_stats.yaml\n",
                                                  "  - tools/word_stats.yaml\n  - tools/shout.yaml\n")
    assert warnings_of(calculator) == []
    invoked = plugdock("invoke", str(calculator), "tool", "shout", "-p", "text=hi")
    assert invoked.returncode == 0 and "HI" in invoked.stdout, invoked.stdout + invoked.stderr
    unit = yaml.safe_load((calculator / "tools" / "shout.yaml").read_text())["parameters"][1]
    assert unit["form"] == "form"  # form=["unit"]; the text parameter stays llm

    again = plugdock("generate", str(calculator))
    assert again.returncode == 0 and "listed" not in again.stdout and provider.read_text().count("shout") == 1


def test_an_existing_unlisted_yaml_is_listed_and_check_only_reports_it(calculator: Path) -> None:
    provider = calculator / PROVIDER
    provider.write_text(provider.read_text().replace("  - tools/word_stats.yaml\n", ""))
    [warning] = warnings_of(calculator)
    assert warning == (f"tools/word_stats.yaml: no provider lists this tool declaration, so the official daemon "
                       f"ignores it (invoking 'word_stats' says 'Tool not found'); add `- tools/word_stats.yaml` "
                       f"under `tools:` in {PROVIDER}")
    checked = plugdock("validate", str(calculator))
    assert checked.returncode == 0 and "no provider lists this tool declaration" in checked.stdout  # a warning
    assert plugdock("validate", str(calculator), "--strict").returncode == 1

    check = plugdock("generate", str(calculator), "--check")  # agrees with validate: up to date, a warning
    assert check.returncode == 0 and "tools/word_stats.yaml is not listed" in check.stderr
    assert "word_stats" not in provider.read_text()
    done = plugdock("generate", str(calculator))
    assert f"listed tools/word_stats.yaml under tools: in {PROVIDER}" in done.stdout
    assert warnings_of(calculator) == []


def test_with_several_providers_generate_names_the_file_and_where(calculator: Path) -> None:
    provider = calculator / PROVIDER
    provider.write_text(provider.read_text().replace("  - tools/word_stats.yaml\n", ""))
    shutil.copy(provider, calculator / "provider" / "second.yaml")
    manifest = calculator / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace(f"    - {PROVIDER}\n",
                                                     f"    - {PROVIDER}\n    - provider/second.yaml\n"))
    before = provider.read_text()
    done = plugdock("generate", str(calculator))
    assert done.returncode == 0, done.stderr
    assert ("tools/word_stats.yaml is not listed, so the daemon does not serve it: add `- tools/word_stats.yaml` "
            f"under `tools:` in {PROVIDER} or provider/second.yaml") in done.stderr
    assert provider.read_text() == before and "listed" not in done.stdout


def test_helper_yaml_and_listed_files_raise_no_warning(calculator: Path) -> None:
    (calculator / "tools" / "helpers.yaml").write_text("prompts:\n  short: Be brief\n")
    (calculator / "tools" / "provider_copy.yaml").write_text(
        yaml.safe_dump({"identity": {"name": "x"}, "tools": ["tools/add.yaml"]}))  # a provider, not a tool
    (calculator / "tools" / "plain.py").write_text("def tool(f):\n    return f\n\n\n@tool\ndef not_typed():\n    ...\n")
    assert warnings_of(calculator) == []


def test_typed_tool_names_reads_decorators_without_importing() -> None:
    code = '''
import plugdock.sdk.typed as typed
from plugdock.sdk import typed as t2
from plugdock.sdk.typed import tool as typed_tool

@typed_tool
def a(x: str) -> str: ...

@typed_tool(name="bee", description="b")
def b(x: str) -> str: ...

@typed.tool("sea")
def c(x: str) -> str: ...

@t2.tool()
def d(x: str) -> str: ...

@other
def e(x: str) -> str: ...
'''
    assert typed_tool_names(code) == ["a", "bee", "sea", "d"]
    assert typed_tool_names("def broken(:\n") == []


def test_form_names_the_parameters_the_workflow_form_sets() -> None:
    @tool(form=["unit"])
    def measure(text: str, unit: str = "words") -> int:
        return len(text)

    forms = {p["name"]: p["form"] for p in measure.declaration()["parameters"]}
    assert forms == {"text": "llm", "unit": "form"}
    hand: dict[str, Any] = measure.declaration("tools/m.py")
    hand["parameters"][1]["form"] = "llm"
    assert merged_declaration(measure, hand, "tools/m.py")["parameters"][1]["form"] == "form"  # the code's say
    with pytest.raises(TypedToolError, match="form= names 'units', which is not a parameter"):
        tool(form="units")(lambda text: text)
    assert json.dumps(tool(form="text")(lambda text: text).declaration()).count('"form": "form"') == 1


@pytest.mark.parametrize(("text", "expected"), [
    ("a: 1\ntools:\n- tools/x.yaml  # first\n# trailing comment\nextra: {}\n",
     "a: 1\ntools:\n- tools/x.yaml  # first\n- tools/y.yaml\n# trailing comment\nextra: {}\n"),
    ("tools:\n    - 'tools/x.yaml'", "tools:\n    - 'tools/x.yaml'\n    - tools/y.yaml\n"),
    ("a: 1  # kept\n", "a: 1  # kept\ntools:\n  - tools/y.yaml\n"),
    ("a: 1\ntools: []\n", "a: 1\ntools:\n- tools/y.yaml\n"),
])
def test_with_tools_listed_keeps_the_rest_of_the_file(text: str, expected: str) -> None:
    assert with_tools_listed(text, ["tools/y.yaml"]) == expected
