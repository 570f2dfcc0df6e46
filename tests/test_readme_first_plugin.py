"""README "A first real plugin", walked as written (issue 17 item 13).

Each fenced block of that section names its file on its first line (``# tools/forecast.py``, or
``# provider/weather.yaml: credentials_for_provider`` for a key to replace); they go into a fresh ``plugdock init``
plugin, which must validate strictly, pass its own tests under plain pytest, and answer ``plugdock invoke`` with
a secret credential and a select parameter, class-based and typed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from plugdock.testing import PluginTestClient

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "### A first real plugin: a secret credential and a select parameter"


def blocks() -> list[tuple[str, str | None, str]]:
    """(file, key to replace or None, text) of each fenced block of the section."""
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    body = text[start: text.index("\n### ", start + len(SECTION))]
    found = []
    for code in re.findall(r"```(?:yaml|python)\n(.*?)```", body, flags=re.S):
        first, _, rest = code.partition("\n")
        target, _, key = first.removeprefix("# ").partition(": ")
        found.append((target.strip(), key.strip() or None, rest))
    return found


def plugdock(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plugdock", *args], capture_output=True, text=True, check=False,
                          cwd=cwd)


def build(tmp_path: Path) -> Path:
    made = plugdock("init", "weather", "--kind", "tool", "--name", "weather", "--author", "acme", "--tool",
                    "forecast", "-y", cwd=tmp_path)
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


def test_the_first_real_plugin_works_as_written(tmp_path: Path) -> None:
    root = build(tmp_path)
    assert (done := plugdock("generate", str(root))).returncode == 0, done.stdout + done.stderr
    provider = root / "provider" / "weather.yaml"
    data = yaml.safe_load(provider.read_text())
    data["tools"].append("tools/typed_forecast.yaml")
    provider.write_text(yaml.safe_dump(data, sort_keys=False))
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
    refused = client.validate_tool_credentials("weather", {"api_key": "nope"})
    assert not refused.ok and "weather keys start with wk-" in str(refused.error)
