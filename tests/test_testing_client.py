"""``plugdock.testing``: every example exercised in-process, with reverse calls answered by ``FakeHost``."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugdock.sdk.model import SystemPromptMessage, UserPromptMessage
from plugdock.testing import FakeHost, PluginTestClient

from conftest import make_plugin

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_tool_example() -> None:
    client = PluginTestClient(EXAMPLES / "echo_tool")
    result = client.invoke_tool("echo_tool", "echo_tool", {"text": "hi"})
    assert result.ok and result.text == "hi"
    assert result.of_type("json")[0]["message"]["json_object"] == {"text": "hi", "length": 2}
    assert client.validate_tool_credentials("echo_tool", {"api_key": "k"}).chunks == [{"result": True}]
    bad = client.validate_tool_credentials("echo_tool", {"api_key": "invalid"})
    assert bad.error == {"error_type": "ToolProviderCredentialValidationError", "message": "the API key is invalid"}


def test_model_example_streams_and_counts_tokens() -> None:
    client = PluginTestClient(EXAMPLES / "echo_model")
    result = client.invoke_llm("echo_model", "echo_model-echo",
                               [SystemPromptMessage(content="be brief"), UserPromptMessage(content="one two three")])
    assert result.ok and result.text == "one two three" and len(result.chunks) == 3
    blocking = client.invoke_llm("echo_model", "echo_model-echo", [UserPromptMessage(content="x y")], stream=False)
    assert blocking.text == "x y" and len(blocking.chunks) == 1
    tokens = client.invoke_model("get_llm_num_tokens", "echo_model", "llm", "echo_model-echo",
                                 prompt_messages=[{"role": "user", "content": "a b c"}], tools=[])
    assert tokens.chunks == [{"num_tokens": 3}]
    creds = client.invoke_model("validate_provider_credentials", "echo_model", "llm", "echo_model-echo",
                                credentials={})
    assert creds.error and creds.error["error_type"] == "CredentialsValidateFailedError"
    schema = client.invoke_model("get_ai_model_schemas", "echo_model", "llm", "echo_model-echo")
    rules = {r["name"]: r for r in schema.chunks[0]["model_schema"]["parameter_rules"]}
    assert rules["temperature"]["type"] == "float" and rules["max_tokens"]["max"] == 4096


def test_model_parameter_rules_are_enforced() -> None:
    client = PluginTestClient(EXAMPLES / "echo_model")
    result = client.invoke_llm("echo_model", "echo_model-echo", [UserPromptMessage(content="x")],
                               model_parameters={"max_tokens": 99999})
    assert result.error and "max_tokens should be less than or equal to 4096" in result.error["message"]


def test_endpoint_example() -> None:
    client = PluginTestClient(EXAMPLES / "hello_endpoint")
    response = client.invoke_endpoint("GET", "/hello?name=Ann", settings={"greeting": "Hi"})
    assert (response.status, response.body) == (200, b"Hi, Ann!")
    assert response.headers["Content-Type"].startswith("text/plain")
    assert client.invoke_endpoint("GET", "/nowhere").status == 404


def test_agent_example_calls_the_model_through_the_host() -> None:
    host = FakeHost(llm_reply=lambda request: ["The answer", " is 42."])
    client = PluginTestClient(EXAMPLES / "single_shot_agent", host=host)
    model = {"provider": "p", "model": "m", "model_type": "llm", "mode": "chat", "completion_params": {}}
    result = client.invoke_agent_strategy("single_shot_agent", "single_shot_agent", {"model": model, "query": "?"})
    assert result.ok and result.text == "The answer is 42."
    (call,) = host.calls_of("llm")
    assert call["prompt_messages"][0]["content"] == "?" and call["stream"] is True


def test_fake_host_storage_tools_and_denials(tmp_path: Path) -> None:
    root = make_plugin(tmp_path / "p")
    (root / "tools" / "demo.py").write_text(
        "from plugdock.sdk import Tool\n\n\nclass DemoTool(Tool):\n"
        "    def _invoke(self, tool_parameters):\n"
        "        self.session.storage.set('n', b'1')\n"
        "        yield self.create_text_message(self.session.storage.get('n').decode())\n"
        "        for message in self.session.tool.invoke_builtin_tool('time', 'now', {'tz': 'UTC'}):\n"
        "            yield self.create_text_message('tool said ' + message.message.text)\n"
    )
    host = FakeHost(tools={("time", "now"): lambda params: f"noon {params['tz']}"})
    result = PluginTestClient(root, host=host).invoke_tool("demo", "demo", {})
    assert result.ok, result.error
    assert [c["message"]["text"] for c in result.chunks] == ["1", "tool said noon UTC"]
    assert host.storage == {"n": b"1"}
    assert [c.type for c in host.calls] == ["storage", "storage", "tool"]

    denied = PluginTestClient(root, host=FakeHost(allowed={"tool"})).invoke_tool("demo", "demo", {})
    assert denied.error == {"error_type": "BackwardsInvocationError",
                            "message": "permission denied, you need to enable storage access in plugin manifest"}


@pytest.mark.parametrize("action", ["invoke_tool", "validate_tool_credentials"])
def test_unknown_provider(action: str) -> None:
    result = PluginTestClient(EXAMPLES / "echo_tool").request("tool", action, {"provider": "nope", "tool": "x",
                                                                               "credentials": {},
                                                                               "tool_parameters": {}})
    assert result.error == {"error_type": "ValueError", "message": "Provider `nope` not found"}
