"""Typed tools: the signature is the schema; YAML is generated from it and drift is reported."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel

from plugdock.sdk.file import File
from plugdock.sdk.typed import TypedToolError, drift, tool
from plugdock.testing import PluginTestClient

EXAMPLES = Path(__file__).parent.parent / "examples"


class Point(BaseModel):
    x: int
    y: int


@tool(description="Everything at once", author="tester")
def everything(text: str, count: int, ratio: float, flag: bool, mode: Literal["a", "b"], items: list[str],
               mapping: dict[str, int], point: Point, doc: File, docs: list[File], note: str | None = None) -> Point:
    """Summary.

    Args:
        text: some text
        count: how many
    """
    return point


def test_signature_becomes_the_declaration() -> None:
    declared = everything.declaration("tools/x.py")
    params = {p["name"]: p for p in declared["parameters"]}
    assert {n: p["type"] for n, p in params.items()} == {
        "text": "string", "count": "number", "ratio": "number", "flag": "boolean", "mode": "select",
        "items": "array", "mapping": "object", "point": "object", "doc": "file", "docs": "files", "note": "string"}
    assert params["text"]["required"] is True and params["note"]["required"] is False
    assert params["text"]["llm_description"] == "some text"
    assert [o["value"] for o in params["mode"]["options"]] == ["a", "b"]
    assert params["point"]["input_schema"]["properties"] == {"x": {"title": "X", "type": "integer"},
                                                             "y": {"title": "Y", "type": "integer"}}
    assert declared["output_schema"]["properties"]["x"]["type"] == "integer"
    assert declared["extra"] == {"python": {"source": "tools/x.py"}}
    assert everything.description == "Everything at once"


def test_generated_declaration_validates() -> None:
    from plugdock.schema.tool import ToolDeclaration

    ToolDeclaration.model_validate(everything.declaration("tools/x.py"))


def test_unsupported_signatures_are_refused() -> None:
    def union(a: int | str) -> None: ...

    def splat(*args: int) -> None: ...

    with pytest.raises(TypedToolError, match="unions of several types"):
        tool(union)
    with pytest.raises(TypedToolError, match=r"\*args and \*\*kwargs"):
        tool(splat)


def test_drift_is_reported() -> None:
    declared = everything.declaration()
    declared["parameters"] = [p for p in declared["parameters"] if p["name"] != "flag"]
    declared["parameters"][0]["type"] = "number"
    assert drift(everything, declared) == [
        "parameter 'flag' is in the code but not in the YAML",
        "parameter 'text' is 'number' in the YAML but 'string' in the code",
    ]


def test_typed_example_serves_and_converts_results() -> None:
    client = PluginTestClient(EXAMPLES / "typed_calculator")
    assert client.invoke_tool("typed_calculator", "add", {"a": 2, "b": 3.5}).chunks[0]["message"] == {
        "json_object": {"result": 5.5}}
    stats = client.invoke_tool("typed_calculator", "word_stats", {"text": "a b c d", "unit": "words"})
    assert stats.chunks[0]["message"]["json_object"] == {"count": 4}
    missing = client.invoke_tool("typed_calculator", "add", {})
    assert missing.error == {"error_type": "ValueError", "message": "missing required parameter(s): a"}


def plugdock(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plugdock", *args], capture_output=True, text=True, check=False)


def test_generate_check_and_validate_drift(tmp_path: Path) -> None:
    root = tmp_path / "calc"
    shutil.copytree(EXAMPLES / "typed_calculator", root)
    assert plugdock("generate", str(root), "--check").returncode == 0
    source = root / "tools" / "math_tools.py"
    source.write_text(source.read_text().replace("def add(a: float, b: float = 0)", "def add(a: float, c: int = 0)"))
    check = plugdock("generate", str(root), "--check")
    assert check.returncode == 1 and "tools/add.yaml is out of date" in check.stdout
    validate = plugdock("validate", str(root))
    assert validate.returncode == 1
    assert "parameter 'c' is in the code but not in the YAML" in validate.stdout
    assert plugdock("generate", str(root)).returncode == 0
    assert plugdock("validate", str(root)).returncode == 0


def test_port_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "echo"
    shutil.copytree(EXAMPLES / "echo_tool", root)
    original = {p: p.read_text() for p in root.rglob("*.py")}
    assert plugdock("port", str(root), "--to", "dify").returncode == 0
    assert "from dify_plugin import Tool" in (root / "tools" / "echo_tool.py").read_text()
    assert plugdock("port", str(root)).returncode == 0
    assert PluginTestClient(root).invoke_tool("echo_tool", "echo_tool", {"text": "x"}).text == "x"
    assert all("plugdock.sdk" in p.read_text() for p in original if "import" in original[p]
               and "plugdock" in original[p])
