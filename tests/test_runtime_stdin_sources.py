"""``plugdock run`` reads any stdin a developer gives it (a file of requests, /dev/null), and refuses a folder that
is no plugin in one line: the README promises an ``error:`` line, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"
ECHO = {"type": "tool", "action": "invoke_tool", "provider": "echo_tool", "tool": "echo_tool", "credentials": {}}


def request_line(session_id: str, text: str) -> str:
    """One request as tests/wire.py ``PluginProcess.request`` sends it."""
    return json.dumps({"session_id": session_id, "conversation_id": None, "message_id": None, "app_id": None,
                       "endpoint_id": None, "context": None, "event": "request",
                       "data": {"user_id": "u1", **ECHO, "tool_parameters": {"text": text}}}) + "\n"


def run(args: list[str], stdin: Any, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return subprocess.run([sys.executable, "-m", "plugdock", *args], stdin=stdin, capture_output=True, text=True,
                          timeout=120, check=False, cwd=cwd, env=env)


def session_lines(stdout: str, session_id: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return [line["data"] for line in lines if line.get("event") == "session" and line["session_id"] == session_id]


def test_a_file_of_requests_is_served_line_by_line(tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text(request_line("s1", "one") + request_line("s2", "two"))
    with requests.open("rb") as stdin:
        result = run(["run", str(EXAMPLES / "echo_tool")], stdin)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for session_id, text in (("s1", "one"), ("s2", "two")):
        answer = session_lines(result.stdout, session_id)
        assert answer[0] == {"type": "stream", "data": {"type": "text", "message": {"text": text}, "meta": None}}
        assert answer[-1] == {"type": "end", "data": {}}


def test_a_files_end_waits_for_the_sessions_in_flight(tmp_path: Path) -> None:
    """The file ends long before a slow handler answers; its answer is still written (a pipe's end would not wait)."""
    plugin = tmp_path / "slow"
    shutil.copytree(EXAMPLES / "echo_tool", plugin)
    tool = plugin / "tools" / "echo_tool.py"
    tool.write_text(tool.read_text().replace("        text = ", "        import time\n        time.sleep(1)\n"
                                                                  "        text = "))
    requests = tmp_path / "requests.jsonl"
    requests.write_text(request_line("slow", "late"))
    with requests.open("rb") as stdin:
        result = run(["run", str(plugin)], stdin)
    assert result.returncode == 0, result.stderr
    answer = session_lines(result.stdout, "slow")
    assert answer[0]["data"]["message"] == {"text": "late"}
    assert answer[-1] == {"type": "end", "data": {}}


def test_dev_null_as_stdin_ends_the_plugin_cleanly() -> None:
    with open(os.devnull, "rb") as stdin:
        result = run(["run", str(EXAMPLES / "echo_tool")], stdin)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert '"event":"error"' not in result.stdout.replace(" ", "")


@pytest.mark.parametrize("args", [["run"], ["run", "."], ["debug", "--daemon", "http://127.0.0.1:9"]])
def test_a_folder_without_manifest_is_one_error_line(tmp_path: Path, args: list[str]) -> None:
    with open(os.devnull, "rb") as stdin:
        result = run(args, stdin, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: the current folder") and str(tmp_path) in lines[0]
    assert f"plugdock {args[0]} DIR" in lines[0]


def test_a_named_folder_without_manifest_is_named(tmp_path: Path) -> None:
    (tmp_path / "notaplugin").mkdir()
    result = run(["run", "notaplugin"], subprocess.DEVNULL, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: 'notaplugin' holds no manifest.yaml: run from a plugin folder or name it: plugdock run DIR"]


def test_an_unreadable_manifest_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "manifest.yaml").write_text("a: [\n")
    result = run(["run"], subprocess.DEVNULL, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: .: manifest.yaml:2:1: invalid YAML: "), result.stderr
