"""``plugdock generate`` merges into the YAML an author edited, and agrees with ``validate`` (issue 17 item 10).

Walked as a user does: generate, hand-edit the YAML (``form: form``, translations, keys the code cannot express),
change the code, generate again; ``validate`` and ``generate --check`` give the same verdict at every step.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def plugdock(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plugdock", *args], capture_output=True, text=True, check=False)


def verdicts(root: Path) -> tuple[bool, bool]:
    """(validate says valid, generate --check says up to date): they must always be equal."""
    valid = plugdock("validate", str(root)).returncode == 0
    fresh = plugdock("generate", str(root), "--check").returncode == 0
    assert valid == fresh, (valid, fresh)
    return valid, fresh


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


@pytest.fixture
def calculator(tmp_path: Path) -> Path:
    root = tmp_path / "calc"
    shutil.copytree(EXAMPLES / "typed_calculator", root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def hand_edit(root: Path) -> None:
    add = root / "tools" / "add.yaml"
    data = load(add)
    data["identity"]["label"]["zh_Hans"] = "加法"
    data["identity"]["icon"] = "icon.svg"
    data["description"]["human"]["ja_JP"] = "二つの数を足す"
    data["parameters"][1]["form"] = "form"
    data["parameters"][0]["label"] = {"en_US": "First number", "zh_Hans": "第一个数"}
    data["has_runtime_parameters"] = False
    add.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    stats = root / "tools" / "word_stats.yaml"
    data = load(stats)
    data["parameters"][1]["options"][0]["label"]["zh_Hans"] = "单词"
    stats.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def test_hand_edits_survive_a_code_change_and_the_two_checks_agree(calculator: Path) -> None:
    tools = calculator / "tools"
    assert verdicts(calculator) == (True, True)
    hand_edit(calculator)
    edited = {p.name: p.read_text() for p in tools.glob("*.yaml")}
    assert verdicts(calculator) == (True, True)  # edits the code does not contradict are not "out of date"
    assert plugdock("generate", str(calculator)).returncode == 0
    assert {p.name: p.read_text() for p in tools.glob("*.yaml")} == edited  # and generate leaves them alone

    source = tools / "math_tools.py"
    source.write_text(source.read_text().replace(
        "def add(a: float, b: float = 0) -> float:", "def add(a: float, b: float = 0, c: int = 1) -> float:")
        .replace("        b: the second number (defaults to 0)\n",
                 "        b: the second number (defaults to 0)\n        c: a third number\n"))
    assert verdicts(calculator) == (False, False)
    assert "parameter 'c' is in the code but not in the YAML" in plugdock("validate", str(calculator)).stdout
    assert "add.yaml is out of date" in plugdock("generate", str(calculator), "--check").stdout

    done = plugdock("generate", str(calculator))
    assert done.returncode == 0 and "updated tools/add.yaml" in done.stdout
    data = load(tools / "add.yaml")
    assert data["identity"]["label"] == {"en_US": "Add", "zh_Hans": "加法"} and data["identity"]["icon"] == "icon.svg"
    assert data["description"]["human"]["ja_JP"] == "二つの数を足す"
    assert data["has_runtime_parameters"] is False
    a, b, c = data["parameters"]
    assert a["label"] == {"en_US": "First number", "zh_Hans": "第一个数"}
    assert b["form"] == "form" and c["name"] == "c" and c["default"] == 1 and c["llm_description"] == "a third number"
    assert load(tools / "word_stats.yaml")["parameters"][1]["options"][0]["label"] == {"en_US": "words",
                                                                                       "zh_Hans": "单词"}
    assert verdicts(calculator) == (True, True)


def test_what_the_code_owns_is_stale_for_both(calculator: Path) -> None:
    add = calculator / "tools" / "add.yaml"
    original = add.read_text()
    for wrong in ("  type: number\n  required: true", "  type: string\n  required: false"):
        add.write_text(original.replace("  type: number\n  required: true", wrong, 1))
        expected = wrong.startswith("  type: number")
        assert verdicts(calculator) == (expected, expected)
    add.write_text(original.replace("  default: 0\n", "  default: 5\n"))
    assert verdicts(calculator) == (False, False)
    assert "parameters[1].default differs from the code" in plugdock("validate", str(calculator)).stdout
    assert plugdock("generate", str(calculator)).returncode == 0
    assert add.read_text() == original


def test_a_missing_yaml_is_written_whole(calculator: Path) -> None:
    (calculator / "tools" / "word_stats.yaml").unlink()
    done = plugdock("generate", str(calculator), "--check")
    assert done.returncode == 1 and "word_stats.yaml is out of date with tools/math_tools.py (missing)" in done.stdout
    assert "wrote tools/word_stats.yaml" in plugdock("generate", str(calculator)).stdout
    assert verdicts(calculator) == (True, True)
