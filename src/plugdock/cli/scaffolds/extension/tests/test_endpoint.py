"""Run ``pytest`` here: the endpoint answers in-process, as the daemon relays it (no daemon needed).

``PluginTestClient`` loads the plugin the way the daemon does; ``.difyignore`` leaves tests/ out of the package.
"""

from pathlib import Path

from plugdock.testing import PluginTestClient

PLUGIN = Path(__file__).resolve().parent.parent


def test_hello_greets_by_name() -> None:
    response = PluginTestClient(PLUGIN).invoke_endpoint("GET", "/hello?name=Ada", settings={"greeting": "Hi"})
    assert (response.status, response.body) == (200, b"Hi, Ada!")
