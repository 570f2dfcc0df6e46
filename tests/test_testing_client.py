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


# -- issue 17 items 2 and 7: imports as the daemon makes them, and the plugin's frame in errors ---------------


def sibling_plugin(root: Path, word: str) -> Path:
    """The echo example whose tool imports a sibling module by top-level name, as official plugins do
    (``from tools.parse import …``), at import time and again inside the call."""
    import shutil

    shutil.copytree(EXAMPLES / "echo_tool", root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "tools" / "parse.py").write_text(f"WORD = {word!r}\n\n\ndef mark(text):\n    return WORD + ':' + text\n")
    (root / "tools" / "echo_tool.py").write_text(
        "from plugdock.sdk import Tool\nfrom tools.parse import mark\n\n\nclass Echo(Tool):\n"
        "    def _invoke(self, tool_parameters):\n"
        "        from tools import parse\n"
        "        if tool_parameters['text'] == 'key':\n"
        "            token = self.runtime.credentials['api_key']\n"
        "        yield self.create_text_message(mark(tool_parameters['text']) + '/' + parse.WORD)\n")
    return root


def test_sibling_imports_work_from_any_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = sibling_plugin(tmp_path / "plugin", "a")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = PluginTestClient(root).invoke_tool("echo_tool", "echo_tool", {"text": "hi"})
    assert result.raise_for_error().text == "a:hi/a"


def test_two_plugins_each_see_their_own_tools_package(tmp_path: Path) -> None:
    import sys

    before = {name for name in sys.modules if name == "tools" or name.startswith("tools.")}
    first = PluginTestClient(sibling_plugin(tmp_path / "first", "one"))
    second = PluginTestClient(sibling_plugin(tmp_path / "second", "two"))
    for _ in range(2):  # alternating calls: each call imports again (``from tools import parse``) in its own
        assert first.invoke_tool("echo_tool", "echo_tool", {"text": "x"}).raise_for_error().text == "one:x/one"
        assert second.invoke_tool("echo_tool", "echo_tool", {"text": "x"}).raise_for_error().text == "two:x/two"
    after = {name for name in sys.modules if name == "tools" or name.startswith("tools.")}
    assert after == before  # nothing of either plugin is left in this process's module table
    assert str(first.registry.root) not in sys.path and str(second.registry.root) not in sys.path


def test_plain_pytest_in_the_plugin_folder(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = sibling_plugin(tmp_path / "plugin", "a")
    (root / "tests").mkdir()
    (root / "tests" / "test_echo.py").write_text(
        "from pathlib import Path\n\nfrom plugdock.testing import PluginTestClient\n\n\n"
        "def test_echo():\n    client = PluginTestClient(Path(__file__).parent.parent)\n"
        "    assert client.invoke_tool('echo_tool', 'echo_tool', {'text': 'hi'}).raise_for_error().text == 'a:hi/a'\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
                         cwd=root, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


def test_an_error_names_the_plugins_own_frame(tmp_path: Path) -> None:
    root = sibling_plugin(tmp_path / "plugin", "a")
    result = PluginTestClient(root).invoke_tool("echo_tool", "echo_tool", {"text": "key"})
    assert result.error == {"error_type": "KeyError", "message": "'api_key'"}  # the wire form is unchanged
    assert result.frame == "tools/echo_tool.py:9 in _invoke: token = self.runtime.credentials['api_key']"
    assert result.error_line == f"KeyError: 'api_key' (at {result.frame})"
    assert result.traceback is not None
    assert result.traceback.startswith("Traceback (most recent call last):\n  File \"" + str(root / "tools"))
    assert result.traceback.rstrip().endswith("KeyError: 'api_key'")
    with pytest.raises(AssertionError, match=r"tools/echo_tool\.py:9") as raised:
        result.raise_for_error()
    assert isinstance(raised.value.__cause__, KeyError)  # pytest shows the plugin's traceback


def test_an_import_error_names_the_line(tmp_path: Path) -> None:
    from plugdock.runtime.registry import RegistryError

    root = sibling_plugin(tmp_path / "plugin", "a")
    (root / "tools" / "parse.py").write_text("import os\n\nVALUE = os.environ['NOT_SET_ANYWHERE_AT_ALL']\n")
    with pytest.raises(RegistryError) as raised:
        PluginTestClient(root)
    assert str(raised.value) == ("tools/echo_tool.py: import failed: KeyError: 'NOT_SET_ANYWHERE_AT_ALL' "
                                 "(at tools/parse.py:3 in <module>: VALUE = os.environ['NOT_SET_ANYWHERE_AT_ALL'])")
