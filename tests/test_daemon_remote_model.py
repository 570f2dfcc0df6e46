"""A model plugin that calls a remote OpenAI-compatible API (a real HTTP server on loopback), through the daemon."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.fake_openai import API_KEY, OPENAI_LLM, FakeOpenAI

from daemon_harness import DaemonProcess

from conftest import make_plugin

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    yield server
    server.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, api: FakeOpenAI) -> Iterator[DaemonProcess]:
    # plugins may not reach loopback by default (plugin_network): the fake API is allow-listed like Ollama would be
    d = DaemonProcess(tmp_path_factory.mktemp("home"),
                      PLUGDOCK_PLUGIN_NETWORK_ALLOW=api.url.split("/")[2]).start()
    root = make_plugin(tmp_path_factory.mktemp("p") / "oai", kind="model", name="oai", model_method="customizable")
    (root / "models" / "llm" / "llm.py").write_text(OPENAI_LLM)
    d.install(root)
    yield d
    d.stop()


def invoke(d: DaemonProcess, url: str, key: str, stream: bool = True) -> list[dict]:
    return d.dispatch("llm/invoke", "tester/oai", {
        "provider": "oai", "model_type": "llm", "model": "gpt-test",
        "credentials": {"endpoint_url": url, "api_key": key},
        "prompt_messages": [{"role": "user", "content": "q"}], "model_parameters": {}, "tools": [], "stop": [],
        "stream": stream})


def test_streams_the_remote_answer(daemon: DaemonProcess, api: FakeOpenAI) -> None:
    events = invoke(daemon, api.url, API_KEY)
    assert all(e["code"] == 0 for e in events)
    assert "".join(e["data"]["delta"]["message"]["content"] for e in events) == "q:0 q:1 q:2 q:3 q:4"
    (blocking,) = invoke(daemon, api.url, API_KEY, stream=False)
    assert blocking["data"]["delta"]["message"]["content"] == "q:0 q:1 q:2 q:3 q:4"


def test_wrong_api_key_maps_to_the_hosts_error_kind(daemon: DaemonProcess, api: FakeOpenAI) -> None:
    (event,) = invoke(daemon, api.url, "sk-wrong")
    inner = json.loads(json.loads(event["message"])["message"])
    assert inner["error_type"] == "InvokeAuthorizationError"
    assert "Incorrect model credentials" in inner["message"]


def test_unreachable_api_is_a_connection_error(daemon: DaemonProcess, api: FakeOpenAI, tmp_path: Path) -> None:
    (event,) = invoke(daemon, "http://127.0.0.1:9/v1", API_KEY)
    inner = json.loads(json.loads(event["message"])["message"])
    assert inner["error_type"] == "InvokeConnectionError"
