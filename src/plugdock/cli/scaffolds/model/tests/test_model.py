"""Run ``pytest`` here: the model is called in-process, as the daemon calls it (no daemon needed).

``PluginTestClient`` loads the plugin the way the daemon does; ``.difyignore`` leaves tests/ out of the package.
"""

from pathlib import Path

from plugdock.sdk.model import UserPromptMessage
from plugdock.testing import PluginTestClient

PLUGIN = Path(__file__).resolve().parent.parent


def test_the_model_streams_the_prompt_back() -> None:
    result = PluginTestClient(PLUGIN).invoke_llm("__NAME__", "__NAME__-echo", [UserPromptMessage(content="hi there")])
    assert result.ok, result.error
    assert result.text == "hi there"
