"""Run ``pytest`` here: the tool is called in-process, as the daemon calls it (no daemon needed).

``PluginTestClient`` loads the plugin the way the daemon does; ``.difyignore`` leaves tests/ out of the package.
"""

from pathlib import Path

from plugdock.testing import PluginTestClient

PLUGIN = Path(__file__).resolve().parent.parent


def test_the_tool_echoes_its_text() -> None:
    result = PluginTestClient(PLUGIN).invoke_tool("__NAME__", "__TOOL__", {"text": "hello"})
    assert result.ok, result.error
    assert result.text == "hello"
    assert result.of_type("json")[0]["message"]["json_object"] == {"text": "hello", "length": 5}


def test_the_provider_refuses_an_invalid_key() -> None:
    result = PluginTestClient(PLUGIN).validate_tool_credentials("__NAME__", {"api_key": "invalid"})
    assert not result.ok
