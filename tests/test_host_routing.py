"""Reverse calls and endpoint settings under a host application, routed as the official daemon routes them.

With ``DIFY_INNER_API_URL`` set, a plugin's model and tool calls go to the host's inner API (a loopback
stand-in answering in Dify's length-prefixed frames) with the tenant, the user and the inner API key, even
when a plugin of that provider is installed on this daemon: the host holds the credentials. Endpoint settings
are sealed and opened by the host's ``invoke/encrypt``; with no host, by the daemon's own box."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from daemon_harness import DaemonProcess
from fake_host import INNER_KEY, SEALED, FakeHost, frame, seal

from conftest import make_plugin

EXAMPLES = Path(__file__).parent.parent / "examples"
pytestmark = pytest.mark.slow

ASKER = '''
from plugdock.sdk import Tool
from plugdock.sdk.model import UserPromptMessage


class Asker(Tool):
    def _invoke(self, tool_parameters):
        model = {"provider": "tester/oai/oai", "model": "gpt-test", "model_type": "llm", "mode": "chat",
                 "completion_params": {"temperature": 0.5}}
        answer = ""
        for chunk in self.session.model.llm.invoke(model_config=model,
                                                  prompt_messages=[UserPromptMessage(content="hi")]):
            answer += chunk.delta.message.content
        yield self.create_text_message("llm: " + answer)
        for message in self.session.tool.invoke_builtin_tool("echo_tool", "echo_tool", {"text": "x"}):
            yield self.create_text_message("tool: " + message.message.text)
        self.session.storage.set("seen", b"yes")
        yield self.create_text_message("storage: " + self.session.storage.get("seen").decode())
'''

GROUP = '''settings:
  - name: api_key
    type: secret-input
    required: true
    label:
      en_US: API key
  - name: greeting
    type: text-input
    required: false
    label:
      en_US: Greeting
endpoints:
  - endpoints/show.yaml
'''

SHOW = '''
import json
from werkzeug import Response
from plugdock.sdk import Endpoint


class Show(Endpoint):
    def _invoke(self, r, values, settings):
        return Response(json.dumps(dict(settings)), status=200, content_type="application/json")
'''


@pytest.fixture(scope="module")
def host() -> Iterator[FakeHost]:
    fake = FakeHost()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, host: FakeHost) -> Iterator[DaemonProcess]:
    work = tmp_path_factory.mktemp("plugins")
    d = DaemonProcess(tmp_path_factory.mktemp("home"), DIFY_INNER_API_URL=host.url,
                      DIFY_INNER_API_KEY=INNER_KEY).start()
    model = make_plugin(work / "oai", kind="model", name="oai", model_method="customizable")
    asker = make_plugin(work / "asker", name="asker")
    (asker / "tools" / "asker.py").write_text(ASKER)
    manifest = asker / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace(
        "    tool:\n      enabled: true", "    tool:\n      enabled: true\n    model:\n      enabled: true\n"
                                          "      llm: true"))
    hooks = make_plugin(work / "hooks", kind="extension", name="hooks")
    (hooks / "group" / "hooks.yaml").write_text(GROUP)
    (hooks / "endpoints" / "show.yaml").write_text('path: "/show"\nmethod: "GET"\nextra:\n  python:\n'
                                                   "    source: endpoints/show.py\n")
    (hooks / "endpoints" / "show.py").write_text(SHOW)
    for root in (model, asker, EXAMPLES / "echo_tool"):
        d.install(root)
    d.hooks = d.install(hooks)  # type: ignore[attr-defined]
    # credentials saved on this daemon for its own (standalone) routing: under a host they must not be used
    d.data(d.client.post("/plugin/t1/management/credentials", json={
        "plugin_id": "tester/oai", "provider": "oai", "credentials": {"endpoint_url": "http://local.invalid",
                                                                      "api_key": "local-key"}}))
    yield d
    d.stop()


def test_model_and_tool_calls_go_to_the_host_not_the_local_plugin(daemon: DaemonProcess, host: FakeHost) -> None:
    events = daemon.dispatch("tool/invoke", "tester/asker", {"provider": "asker", "tool": "asker", "credentials": {},
                                                             "tool_parameters": {}})
    assert all(e["code"] == 0 for e in events), events
    assert [e["data"]["message"]["text"] for e in events] == ["llm: from the host", "tool: host ran echo_tool",
                                                              "storage: yes"]
    assert not [path for path, _ in host.calls if "storage" in path]  # storage stays on this daemon
    (llm,) = [b for b in host.requests_to("invoke/llm") if b["provider"] == "tester/oai/oai"]  # tests share host
    assert (llm["tenant_id"], llm["user_id"], llm["type"]) == ("t1", "u1", "llm")
    assert (llm["provider"], llm["model"], llm["mode"]) == ("tester/oai/oai", "gpt-test", "chat")
    assert llm["completion_params"] == {"temperature": 0.5} and llm["stream"] is True
    assert llm["prompt_messages"][0]["role"] == "user" and llm["prompt_messages"][0]["content"] == "hi"
    assert "credentials" not in llm and "local-key" not in json.dumps(host.calls)
    (tool,) = host.requests_to("invoke/tool")
    assert (tool["tenant_id"], tool["user_id"], tool["type"]) == ("t1", "u1", "tool")
    assert (tool["tool_type"], tool["provider"], tool["tool"], tool["tool_parameters"]) == (
        "builtin", "echo_tool", "echo_tool", {"text": "x"})
    assert set(host.keys) == {INNER_KEY}


def test_host_errors_reach_the_plugin(daemon: DaemonProcess, tmp_path: Path) -> None:
    broken = make_plugin(tmp_path / "broken", name="broken")
    (broken / "tools" / "broken.py").write_text(ASKER.replace("class Asker", "class Broken").replace(
        "tester/oai/oai", "nobody/none/none"))
    manifest = broken / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace(
        "    tool:\n      enabled: true", "    tool:\n      enabled: true\n    model:\n      enabled: true\n"
                                          "      llm: true"))
    daemon.install(broken)
    (event,) = daemon.dispatch("tool/invoke", "tester/broken", {"provider": "broken", "tool": "broken",
                                                                "credentials": {}, "tool_parameters": {}})
    assert "Provider nobody/none/none does not exist." in event["message"]


def test_endpoint_settings_are_sealed_by_the_host(daemon: DaemonProcess, host: FakeHost) -> None:
    identifier = daemon.hooks  # type: ignore[attr-defined]
    assert daemon.data(daemon.client.post("/plugin/t1/endpoint/setup", json={
        "user_id": "u1", "plugin_unique_identifier": identifier, "name": "main",
        "settings": {"api_key": "s3cret-value", "greeting": "Hi"}})) is True
    (endpoint,) = daemon.data(daemon.client.get("/plugin/t1/endpoint/list"))
    (sealing,) = [b for b in host.requests_to("invoke/encrypt") if b["opt"] == "encrypt"]
    assert {k: sealing[k] for k in ("tenant_id", "user_id", "type", "namespace", "identity", "data")} == {
        "tenant_id": "t1", "user_id": "u1", "type": "encrypt", "namespace": "endpoint", "identity": endpoint["id"],
        "data": {"api_key": "s3cret-value", "greeting": "Hi"}}
    assert [(c["name"], c["type"]) for c in sealing["config"]] == [("api_key", "secret-input"),
                                                                   ("greeting", "text-input")]
    with sqlite3.connect(daemon.home / "plugdock.db") as db:  # stored as the host sealed it, as Dify reads it
        (stored,) = db.execute("SELECT settings FROM endpoints WHERE id = ?", (endpoint["id"],)).fetchone()
    assert json.loads(stored) == {"api_key": seal("s3cret-value"), "greeting": "Hi"}
    assert endpoint["settings"]["greeting"] == "Hi" and endpoint["settings"]["api_key"] != "s3cret-value"

    public = httpx.Client(base_url=f"{daemon.url}/e/{endpoint['hook_id']}", timeout=60)
    assert public.get("/show").json() == {"api_key": "s3cret-value", "greeting": "Hi"}
    opening = [b for b in host.requests_to("invoke/encrypt") if b["opt"] == "decrypt"]
    assert opening[-1]["identity"] == endpoint["id"] and opening[-1]["tenant_id"] == "t1"
    assert opening[-1]["data"]["api_key"].startswith(SEALED)

    # the masked secret sent back keeps its value; the host's cache of the endpoint is cleared after
    assert daemon.data(daemon.client.post("/plugin/t1/endpoint/update", json={
        "endpoint_id": endpoint["id"], "user_id": "u1", "name": "main",
        "settings": {**endpoint["settings"], "greeting": "Yo"}})) is True
    assert public.get("/show").json() == {"api_key": "s3cret-value", "greeting": "Yo"}
    assert endpoint["id"] in host.cleared


def test_no_host_seals_with_the_local_box(tmp_path: Path) -> None:
    from plugdock.daemon.invocation.host_crypto import EndpointSettings
    from plugdock.daemon.settings import Settings
    from plugdock.daemon.state.secrets_box import SecretBox
    from plugdock.errors import PlugdockError

    box = SecretBox(tmp_path)
    crypto = EndpointSettings(Settings(), box, None)  # type: ignore[arg-type]
    crypto.config = lambda _identifier: [{"name": "k", "type": "secret-input"}]  # type: ignore[method-assign]
    endpoint_id, sealed = asyncio.run(crypto.seal_new("t1", "u1", "a/b:0.0.1@x", {"k": "v"}))
    assert box.open(sealed) == {"k": "v"} and endpoint_id
    row = SimpleNamespace(id=endpoint_id, tenant_id="t1", unique_identifier="a/b:0.0.1@x", settings=sealed)
    assert asyncio.run(crypto.open(row)) == {"k": "v"}  # type: ignore[arg-type]
    # a secret sent back masked (plugdock's or the official daemon's mask) keeps its value; a new one replaces it
    row.settings = box.seal({"k": "secret-value", "other": "x"})
    for masked in ("[__HIDDEN__]", "se********ue"):
        update = asyncio.run(crypto.update(row, "u1", {"k": masked, "other": "y"}))  # type: ignore[arg-type]
        assert box.open(update) == {"k": "secret-value", "other": "y"}
    assert box.open(asyncio.run(crypto.update(row, "u1", {"k": "new"}))) == {"k": "new"}  # type: ignore[arg-type]
    # settings a host sealed cannot be opened once the host is gone, and say so
    row.settings = json.dumps({"k": SEALED + "eA=="}).encode()
    with pytest.raises(PlugdockError, match="encrypted by the host application"):
        asyncio.run(crypto.open(row))  # type: ignore[arg-type]
    # settings with no secret field were never encrypted (EncryptRequired): they open without the host
    crypto.config = lambda _identifier: [{"name": "greeting", "type": "text-input"}]  # type: ignore[method-assign]
    row.settings = json.dumps({"greeting": "Yo"}).encode()
    assert asyncio.run(crypto.open(row)) == {"greeting": "Yo"}  # type: ignore[arg-type]


def test_frames_are_the_ones_dify_packs() -> None:
    from plugdock.daemon.invocation.inner_api import parse_frames

    one = frame({"data": {"a": 1}, "error": ""})
    assert one[:4] == b"\x0f\x00\x0a\x00" and one[8:14] == b"\x00" * 6 and len(one) == 14 + int.from_bytes(one[4:8],
                                                                                                        "little")
    buffer = bytearray(one + frame({"data": None, "error": "boom"})[:9])
    assert parse_frames(buffer) == [{"data": {"a": 1}, "error": ""}] and len(buffer) == 9
