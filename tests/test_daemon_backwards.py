"""Reverse invocation through the daemon: an agent strategy drives a model plugin (backed by a loopback
OpenAI-compatible server) and a tool plugin on the standalone daemon; under a host application (a fake one)
apps, nodes and file uploads go to its inner API; permissions, missing hosts and loops get precise errors.
Model and tool calls under a host: tests/test_host_routing.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.fake_openai import API_KEY, OPENAI_LLM, FakeOpenAI

from daemon_harness import DaemonProcess
from fake_host import INNER_KEY, FakeHost

from conftest import make_plugin

EXAMPLES = Path(__file__).parent.parent / "examples"
pytestmark = pytest.mark.slow

STRATEGY = '''
from plugdock.sdk import AgentStrategy
from plugdock.sdk.model import UserPromptMessage


class Loop(AgentStrategy):
    def _invoke(self, parameters):
        log = self.create_log_message("thinking", {"query": parameters["query"]})
        yield log
        answer = ""
        for chunk in self.session.model.llm.invoke(model_config=parameters["model"],
                                                  prompt_messages=[UserPromptMessage(content=parameters["query"])]):
            answer += chunk.delta.message.content
        yield self.finish_log_message(log, data={"answer": answer})
        for message in self.session.tool.invoke_builtin_tool("echo_tool", "echo_tool", {"text": answer}):
            if message.type.value == "text":
                yield self.create_text_message("tool says: " + message.message.text)
'''

CALLER = '''
from plugdock.sdk import Tool


class Caller(Tool):
    def _invoke(self, tool_parameters):
        what = tool_parameters["what"]
        if what == "app":
            for event in self.session.app.chat.invoke("app-1", "hi", {}, response_mode="streaming"):
                yield self.create_text_message(event["answer"])
        elif what == "classify":
            result = self.session.workflow_node.question_classifier.invoke([{"name": "greeting"}], {}, "hello")
            yield self.create_json_message(result)
        elif what == "llm":
            for chunk in self.session.model.llm.invoke({"provider": "x", "model": "m", "mode": "chat"}, []):
                yield self.create_text_message("unreached")
        elif what == "upload":
            uploaded = self.session.file.upload("a.txt", b"abc", "text/plain")
            yield self.create_text_message(uploaded.id)
        elif what == "unknown_model":
            for chunk in self.session.model.llm.invoke({"provider": "nobody/none/none", "model": "m", "mode": "chat"},
                                                      []):
                yield self.create_text_message("unreached")
        elif what == "loop":
            for message in self.session.tool.invoke_builtin_tool("caller", "caller", {"what": "loop"}):
                yield message
'''


@pytest.fixture(scope="module")
def services() -> Iterator[tuple[FakeOpenAI, FakeHost]]:
    api, host = FakeOpenAI(), FakeHost()
    yield api, host
    api.close()
    host.close()


def with_permissions(plugin: Path) -> None:
    manifest = plugin / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("    tool:\n      enabled: true",
                                                     "    tool:\n      enabled: true\n    app:\n      enabled: true\n"
                                                     "    node:\n      enabled: true\n    model:\n      enabled: true\n"
                                                     "      llm: true"))


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, services: tuple[FakeOpenAI, FakeHost],
           ) -> Iterator[DaemonProcess]:
    """The standalone daemon (no host application): model and tool calls served by its own plugins."""
    api, _ = services
    work = tmp_path_factory.mktemp("plugins")
    # the model plugin calls the loopback API, allow-listed (plugin_network)
    d = DaemonProcess(tmp_path_factory.mktemp("home"), PLUGDOCK_MAX_BACKWARDS_DEPTH="3",
                      PLUGDOCK_PLUGIN_NETWORK_ALLOW=api.url.split("/")[2]).start()
    model = make_plugin(work / "oai", kind="model", name="oai", model_method="customizable")
    (model / "models" / "llm" / "llm.py").write_text(OPENAI_LLM)
    agent = make_plugin(work / "loop", kind="agent-strategy", name="loop")
    (agent / "strategies" / "loop.py").write_text(STRATEGY)
    caller = make_plugin(work / "caller", name="caller")
    (caller / "tools" / "caller.py").write_text(CALLER)
    with_permissions(caller)
    for root in (model, agent, caller, EXAMPLES / "echo_tool"):
        d.install(root)
    d.data(d.client.post("/plugin/t1/management/credentials", json={
        "plugin_id": "tester/oai", "provider": "oai", "credentials": {"endpoint_url": api.url, "api_key": API_KEY}}))
    yield d
    d.stop()


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory, services: tuple[FakeOpenAI, FakeHost],
           ) -> Iterator[DaemonProcess]:
    """A daemon under a host application: every reverse call but storage goes to its inner API."""
    _, host = services
    d = DaemonProcess(tmp_path_factory.mktemp("home"), DIFY_INNER_API_URL=host.url,
                      DIFY_INNER_API_KEY=INNER_KEY).start()
    caller = make_plugin(tmp_path_factory.mktemp("plugins") / "caller", name="caller")
    (caller / "tools" / "caller.py").write_text(CALLER)
    with_permissions(caller)
    d.install(caller)
    yield d
    d.stop()


def test_agent_strategy_drives_model_and_tool_plugins(daemon: DaemonProcess) -> None:
    model = {"provider": "tester/oai/oai", "model": "gpt-test", "model_type": "llm", "mode": "chat",
             "completion_params": {}}
    events = daemon.dispatch("agent_strategy/invoke", "tester/loop", {
        "agent_strategy_provider": "loop", "agent_strategy": "loop",
        "agent_strategy_params": {"model": model, "query": "why"}})
    assert all(e["code"] == 0 for e in events), events
    transcript = [(e["data"]["type"], e["data"]["message"]) for e in events]
    assert transcript[0][0] == "log" and transcript[0][1]["status"] == "success"
    assert transcript[1][1]["data"] == {"answer": "why:0 why:1 why:2 why:3 why:4"}
    assert transcript[2] == ("text", {"text": "tool says: why:0 why:1 why:2 why:3 why:4"})


def test_credentials_are_encrypted_and_masked(daemon: DaemonProcess) -> None:
    listed = daemon.data(daemon.client.get("/plugin/t1/management/credentials"))
    assert listed == [{"plugin_id": "tester/oai", "provider": "oai", "kind": "model", "credentials": {
        "endpoint_url": listed[0]["credentials"]["endpoint_url"], "api_key": "[__HIDDEN__]"}}]
    database = (daemon.home / "plugdock.db").read_bytes()
    assert API_KEY.encode() not in database


def test_app_and_node_calls_go_to_the_host(hosted: DaemonProcess, services: tuple[FakeOpenAI, FakeHost]) -> None:
    _, host = services
    events = hosted.dispatch("tool/invoke", "tester/caller", {"provider": "caller", "tool": "caller",
                                                              "credentials": {}, "tool_parameters": {"what": "app"}})
    assert [e["data"]["message"]["text"] for e in events] == ["hello", " from", " the app"]
    _, body = next(c for c in host.calls if c[0] == "/inner/api/invoke/app")
    assert body["tenant_id"] == "t1" and body["user_id"] == "u1" and body["type"] == "app"
    assert body["app_id"] == "app-1" and body["response_mode"] == "streaming"
    (classified,) = hosted.dispatch("tool/invoke", "tester/caller", {
        "provider": "caller", "tool": "caller", "credentials": {}, "tool_parameters": {"what": "classify"}})
    assert classified["data"]["message"]["json_object"] == {"class_name": "greeting"}


def test_missing_permission_is_refused(daemon: DaemonProcess, tmp_path: Path) -> None:
    plain = make_plugin(tmp_path / "plain", name="plain")
    (plain / "tools" / "plain.py").write_text(CALLER.replace("class Caller", "class Plain"))
    daemon.install(plain)
    (event,) = daemon.dispatch("tool/invoke", "tester/plain", {
        "provider": "plain", "tool": "plain", "credentials": {}, "tool_parameters": {"what": "llm"}})
    inner = json.loads(json.loads(event["message"])["message"])
    assert inner["error_type"] == "BackwardsInvocationError"
    assert "permission denied, you need to enable model access" in inner["message"]


def test_file_upload_and_unknown_provider(hosted: DaemonProcess, services: tuple[FakeOpenAI, FakeHost]) -> None:
    _, host = services
    (uploaded,) = hosted.dispatch("tool/invoke", "tester/caller", {
        "provider": "caller", "tool": "caller", "credentials": {}, "tool_parameters": {"what": "upload"}})
    assert uploaded["data"]["message"]["text"] == "file-1"
    assert ("/inner/api/upload/file/request", {"filename": "a.txt", "mimetype": "text/plain", "tenant_id": "t1",
                                               "user_id": "u1", "type": "upload_file"}) in host.calls
    (unknown,) = hosted.dispatch("tool/invoke", "tester/caller", {
        "provider": "caller", "tool": "caller", "credentials": {}, "tool_parameters": {"what": "unknown_model"}})
    message = json.loads(json.loads(unknown["message"])["message"])["message"]
    assert message == "Provider nobody/none/none does not exist."  # the host's error frame, word for word


def test_loops_are_cut_at_the_depth_limit(daemon: DaemonProcess) -> None:
    events = daemon.dispatch("tool/invoke", "tester/caller", {
        "provider": "caller", "tool": "caller", "credentials": {}, "tool_parameters": {"what": "loop"}})
    message = json.loads(json.loads(events[-1]["message"])["message"])["message"]
    assert "depth limit (3) reached" in message


def test_no_host_configured(daemon: DaemonProcess) -> None:
    (event,) = daemon.dispatch("tool/invoke", "tester/caller", {
        "provider": "caller", "tool": "caller", "credentials": {}, "tool_parameters": {"what": "app"}})
    assert "no host application configured for 'app' calls" in event["message"]
    (unknown,) = daemon.dispatch("tool/invoke", "tester/caller", {
        "provider": "caller", "tool": "caller", "credentials": {}, "tool_parameters": {"what": "unknown_model"}})
    assert "no installed plugin of this tenant provides it" in unknown["message"]


def test_agent_blobs_are_reassembled(tmp_path: Path) -> None:
    d = DaemonProcess(tmp_path / "home").start()
    try:
        agent = make_plugin(tmp_path / "blobby", kind="agent-strategy", name="blobby")
        (agent / "strategies" / "blobby.py").write_text(
            "from plugdock.sdk import AgentStrategy\n\n\nclass B(AgentStrategy):\n"
            "    def _invoke(self, parameters):\n"
            "        yield self.create_blob_message(bytes(range(256)) * 100, meta={'mime_type': 'a/b'})\n"
            "        yield self.create_text_message('done')\n")
        d.install(agent)
        events = d.dispatch("agent_strategy/invoke", "tester/blobby", {
            "agent_strategy_provider": "blobby", "agent_strategy": "blobby", "agent_strategy_params": {}})
        import base64

        assert [e["data"]["type"] for e in events] == ["blob", "text"]
        assert base64.b64decode(events[0]["data"]["message"]["blob"]) == bytes(range(256)) * 100
        assert events[0]["data"]["meta"] == {"mime_type": "a/b"}
    finally:
        d.stop()


def test_malformed_reverse_invocations_get_precise_errors() -> None:
    """The router answers a plugin's bad invoke messages with an error and end, never a crash."""
    import asyncio
    from types import SimpleNamespace

    from plugdock.daemon.invocation.backwards import BackwardsRouter
    from plugdock.daemon.plugins.supervisor import Waiting
    from plugdock.daemon.settings import Settings

    sent: list[dict] = []

    async def send(line: bytes) -> None:
        sent.append(json.loads(line)["data"])

    async def run() -> None:
        waiting = Waiting(asyncio.Queue(), "t1", "tool", "u1")
        model_waiting = Waiting(asyncio.Queue(), "t1", "model", "u1")
        instance = SimpleNamespace(sessions={"s1": waiting, "s2": model_waiting}, send=send,
                                   launch=SimpleNamespace(manifest={"resource": {"permission": {}}}, plugin_id="a/b"))
        router = BackwardsRouter(Settings(), None, None, None, None)  # type: ignore[arg-type]
        await router.handle(instance, "s1", {"type": "storage", "backwards_request_id": "r1"})  # type: ignore[arg-type]
        await router.handle(instance, "s1", {"type": "teleport", "backwards_request_id": "r2",  # type: ignore[arg-type]
                                             "request": {}})
        await router.handle(instance, "s1", {"type": "storage", "backwards_request_id": "r3",  # type: ignore[arg-type]
                                             "request": {"opt": "get", "key": "k"}})
        await router.handle(instance, "s2", {"type": "tool", "backwards_request_id": "r4",  # type: ignore[arg-type]
                                             "request": {}})

    asyncio.run(run())
    errors = [m["message"] for m in sent if m["event"] == "error"]
    assert [m["event"] for m in sent].count("end") == 4
    assert "malformed reverse invocation" in errors[0]
    assert "unknown reverse invocation type 'teleport'" in errors[1]
    assert "enable storage access" in errors[2]
    assert errors[3] == "you can not invoke dify from model"
