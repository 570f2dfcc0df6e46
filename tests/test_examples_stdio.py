"""Every example runs exactly as the official daemon runs a plugin (``python -m main``, ``INSTALL_METHOD=local``)."""

from __future__ import annotations

import binascii
from pathlib import Path

import pytest

from plugdock.runtime.http_wire import serialize_request
from wire import PluginProcess, stream_data

EXAMPLES = Path(__file__).parent.parent / "examples"
MODEL = {"provider": "p", "model": "m", "model_type": "llm", "mode": "chat", "completion_params": {}}

CASES = {
    "echo_tool": {"type": "tool", "action": "invoke_tool", "provider": "echo_tool", "tool": "echo_tool",
                  "credentials": {}, "tool_parameters": {"text": "x"}},
    "typed_calculator": {"type": "tool", "action": "invoke_tool", "provider": "typed_calculator", "tool": "add",
                         "credentials": {}, "tool_parameters": {"a": 1, "b": 2}},
    "echo_model": {"type": "model", "action": "invoke_llm", "provider": "echo_model", "model_type": "llm",
                   "model": "echo_model-echo", "credentials": {}, "prompt_messages": [{"role": "user",
                                                                                      "content": "a b"}],
                   "model_parameters": {}, "tools": [], "stop": [], "stream": True},
    "hello_endpoint": {"type": "endpoint", "action": "invoke_endpoint", "settings": {},
                       "raw_http_request": binascii.hexlify(serialize_request("GET", "/hello", {}, b"")).decode()},
    "single_shot_agent": {"type": "agent_strategy", "action": "invoke_agent_strategy",
                          "agent_strategy_provider": "single_shot_agent", "agent_strategy": "single_shot_agent",
                          "agent_strategy_params": {"model": MODEL, "query": "q"}},
}


def llm_answer(plugin: PluginProcess, session_id: str, invoke: dict) -> None:
    rid = invoke["backwards_request_id"]
    plugin.backwards(session_id, rid, "response", {"model": "m", "delta": {"index": 0, "message": {
        "role": "assistant", "content": "answer", "tool_calls": []}}}, "stream")
    plugin.backwards(session_id, rid, "end")


@pytest.mark.parametrize("example", sorted(CASES))
def test_example_serves_over_stdio(example: str) -> None:
    plugin = PluginProcess(EXAMPLES / example)
    try:
        plugin.ready()
        messages = plugin.session(plugin.request(CASES[example]), answer=llm_answer)
        assert [m["type"] for m in messages][-1] == "end"
        assert "error" not in [m["type"] for m in messages], messages
        assert stream_data(messages)
    finally:
        assert plugin.close() == 0


@pytest.mark.parametrize(("example", "expected"), [
    ("markdown_pages", "Installed datasource provider markdown_pages (online_document): "),
    ("signed_webhook", "Installed trigger provider signed_webhook: "),
    ("echo_tool", "Installed tool provider echo_tool: echo_tool"),
])
def test_start_up_log_names_every_provider_kind(example: str, expected: str) -> None:
    """The start-up log lists what the plugin serves, datasource and trigger providers too."""
    plugin = PluginProcess(EXAMPLES / example)
    try:
        line = plugin.wait_for(lambda ln: ln.get("event") == "log" and
                               str(ln["data"].get("message", "")).startswith(expected))
        assert line["data"]["level"] == "INFO"
    finally:
        assert plugin.close() == 0
