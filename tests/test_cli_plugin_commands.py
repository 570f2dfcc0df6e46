"""``plugdock run``, ``invoke`` and ``debug`` from the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from wire import PluginProcess, stream_data

EXAMPLES = Path(__file__).parent.parent / "examples"


def plugdock(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plugdock", *args], capture_output=True, text=True, timeout=60,
                          check=False)


def test_run_serves_stdio_like_a_daemon_launch() -> None:
    run = PluginProcess(EXAMPLES, command=[sys.executable, "-m", "plugdock", "run", str(EXAMPLES / "echo_tool")])
    run.ready()
    sid = run.request({"type": "tool", "action": "invoke_tool", "provider": "echo_tool", "tool": "echo_tool",
                       "credentials": {}, "tool_parameters": {"text": "via run"}})
    assert stream_data(run.session(sid))[0]["message"]["text"] == "via run"
    assert run.close() == 0


def test_invoke_tool_prints_messages() -> None:
    result = plugdock("invoke", str(EXAMPLES / "echo_tool"), "tool", "echo_tool", "-p", "text=hello there")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "hello there" and '"length": 11' in lines[1]


def test_invoke_llm_endpoint_and_agent() -> None:
    llm = plugdock("invoke", str(EXAMPLES / "echo_model"), "llm", "echo_model-echo", "--prompt", "a b")
    assert llm.returncode == 0 and llm.stdout.strip() == "a b"
    endpoint = plugdock("invoke", str(EXAMPLES / "hello_endpoint"), "endpoint", "GET /hello?name=Zed")
    assert endpoint.returncode == 0 and endpoint.stdout == "Hello, Zed!" and "HTTP 200" in endpoint.stderr


def test_invoke_errors_exit_non_zero_with_one_line() -> None:
    result = plugdock("invoke", str(EXAMPLES / "echo_tool"), "tool", "missing")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: ValueError: Tool `missing` not found for provider `echo_tool`"
    bad = plugdock("invoke", str(EXAMPLES / "echo_tool"), "tool", "echo_tool", "-p", "oops")
    assert bad.returncode == 2 and "must look like key=value" in bad.stderr
