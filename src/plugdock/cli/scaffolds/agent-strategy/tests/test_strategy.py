"""Run ``pytest`` here: the strategy runs in-process against a fake Dify (no daemon needed).

``FakeHost`` answers the strategy's model calls; ``.difyignore`` leaves tests/ out of the package.
"""

from pathlib import Path

from plugdock.testing import FakeHost, PluginTestClient

PLUGIN = Path(__file__).resolve().parent.parent


def test_the_strategy_answers_with_the_model() -> None:
    host = FakeHost(llm_reply=lambda request: "forty-two")
    client = PluginTestClient(PLUGIN, host=host)
    model = {"provider": "langgenius/openai/openai", "model": "gpt-4o", "mode": "chat", "completion_params": {}}
    result = client.invoke_agent_strategy("__NAME__", "__NAME__", {"model": model, "tools": [], "query": "why?"})
    assert result.ok, result.error
    assert result.text == "forty-two"
    assert host.calls_of("llm")[0]["prompt_messages"][0]["content"] == "why?"
