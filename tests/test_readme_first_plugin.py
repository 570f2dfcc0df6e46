"""README "A first real plugin", walked as written (issue 17 item 13).

Each fenced block of that section names its file on its first line (``# tools/forecast.py``, or
``# provider/weather.yaml: credentials_for_provider`` for a key to replace); they go into a fresh plugin made by
the section's own ``plugdock init`` command. Then the ``plugdock generate|validate|invoke weather ...`` commands
its prose names run as written, in the order written, from the folder holding ``weather``: no step the reader is
not told (the typed tool is served only once ``plugdock generate`` has written its YAML and listed it). The plugin
must then validate strictly, pass its own tests under plain pytest, and answer with a secret credential and a
select parameter, class-based and typed.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from plugdock.testing import PluginTestClient

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "### A first real plugin: a secret credential and a select parameter"


COMMAND = re.compile(r"`(plugdock (?:init|generate|validate|invoke) weather\b[^`]*)`")


def section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    return text[start: text.index("\n### ", start + len(SECTION))]


def commands() -> list[tuple[int, list[str]]]:
    """(offset in the section, argv) of each ``plugdock ... weather`` command its prose names."""
    return [(m.start(), shlex.split(m.group(1))[1:]) for m in COMMAND.finditer(section())]


def blocks() -> list[tuple[str, str | None, str]]:
    """(file, key to replace or None, text) of each fenced block of the section."""
    found = []
    for code in re.findall(r"```(?:yaml|python)\n(.*?)```", section(), flags=re.S):
        first, _, rest = code.partition("\n")
        target, _, key = first.removeprefix("# ").partition(": ")
        found.append((target.strip(), key.strip() or None, rest))
    return found


def plugdock(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plugdock", *args], capture_output=True, text=True, check=False,
                          cwd=cwd)


def build(tmp_path: Path) -> Path:
    init = [argv for _, argv in commands() if argv[0] == "init"]
    assert init, "the section names its `plugdock init weather ...` command"
    made = plugdock(*init[0], cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    root = tmp_path / "weather"
    for target, key, text in blocks():
        path = root / target
        if key is None:
            path.write_text(text, encoding="utf-8")
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data[key] = yaml.safe_load(text)[key]
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return root


def test_the_section_names_every_file_it_shows() -> None:
    assert [(t, k) for t, k, _ in blocks()] == [
        ("provider/weather.yaml", "credentials_for_provider"), ("tools/forecast.yaml", "parameters"),
        ("tools/forecast.py", None), ("provider/weather.py", None), ("tests/test_tool.py", None),
        ("tools/typed_forecast.py", None)]


def test_the_section_says_to_generate_before_invoking_the_typed_tool() -> None:
    typed_block = section().index("# tools/typed_forecast.py")
    named = [(at, argv[0]) for at, argv in commands() if at > typed_block]
    verbs = [verb for _, verb in named]
    assert "generate" in verbs and "invoke" in verbs, named
    assert verbs.index("generate") < verbs.index("invoke"), named
    assert any(argv[:4] == ["invoke", "weather", "tool", "typed_forecast"] for _, argv in commands())


def test_the_first_real_plugin_works_as_written(tmp_path: Path) -> None:
    root = build(tmp_path)
    for _, argv in commands():
        if argv[0] != "init":
            ran = plugdock(*argv, cwd=tmp_path)
            assert ran.returncode == 0, (argv, ran.stdout + ran.stderr)
            assert argv[0] != "invoke" or ran.stdout.strip(), argv
    assert "- tools/typed_forecast.yaml" in (root / "provider" / "weather.yaml").read_text()  # generate listed it
    checked = plugdock("validate", str(root), "--strict")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=root,
                           capture_output=True, text=True, check=False)
    assert tests.returncode == 0 and "1 passed" in tests.stdout, tests.stdout + tests.stderr

    invoked = plugdock("invoke", str(root), "tool", "forecast", "-p", "city=Berlin", "-p", "units=imperial",
                       "-c", "api_key=wk-test")
    assert invoked.returncode == 0 and "Berlin: 70°F" in invoked.stdout, invoked.stdout + invoked.stderr

    client = PluginTestClient(root)
    typed = client.invoke_tool("weather", "typed_forecast", {"city": "Oslo"}, credentials={"api_key": "wk-1"})
    assert typed.ok, typed.error
    assert typed.of_type("json")[0]["message"]["json_object"] == {"city": "Oslo", "units": "metric",
                                                                  "authorized": True}
    declared = json.dumps(yaml.safe_load((root / "tools" / "typed_forecast.yaml").read_text()))
    assert '"type": "select"' in declared and '"tool"' not in declared  # the Tool parameter is not declared
    units = yaml.safe_load((root / "tools" / "typed_forecast.yaml").read_text())["parameters"][1]
    assert units["name"] == "units" and units["form"] == "form"  # as the prose asks, like forecast.yaml's
    refused = client.validate_tool_credentials("weather", {"api_key": "nope"})
    assert not refused.ok and "weather keys start with wk-" in str(refused.error)
