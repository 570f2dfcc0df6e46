"""The daemon end to end over real HTTP on loopback: install real packages (plugdock and official-SDK
plugins), invoke tools and models, reverse storage calls, faults, uninstall, restart, no orphans."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance_plugins import to_official
from daemon_harness import DaemonProcess, eventually

from conftest import make_plugin

EXAMPLES = Path(__file__).parent.parent / "examples"
pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    """Running and not a zombie (a zombie only waits for its parent to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def tool_plugin(tmp: Path, name: str, body: str) -> Path:
    root = make_plugin(tmp / name, name=name)
    (root / "tools" / f"{name}.py").write_text(
        "import os, time\nfrom plugdock.sdk import Tool\n\n\nclass T(Tool):\n"
        "    def _invoke(self, tool_parameters):\n" + "".join(f"        {ln}\n" for ln in body.strip().splitlines()))
    return root


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    home = tmp_path_factory.mktemp("daemon-home")
    d = DaemonProcess(home, PLUGIN_MAX_EXECUTION_TIMEOUT="20").start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("plugins")


def text_of(events: list[dict]) -> str:
    return "".join(e["data"]["message"]["text"] for e in events if e["code"] == 0 and e["data"].get("type") == "text")


def test_health_and_auth(daemon: DaemonProcess) -> None:
    import httpx

    assert daemon.client.get("/health/check").json()["status"] == "ok"
    denied = httpx.get(f"{daemon.url}/plugin/t1/management/list", headers={"X-Api-Key": "wrong"})
    assert denied.status_code == 401 and denied.json()["code"] == -401
    assert json.loads(denied.json()["message"])["error_type"] == "PluginDaemonUnauthorizedError"
    assert httpx.get(f"{daemon.url}/nowhere").status_code == 401  # unknown routes say nothing without the key
    missing = daemon.client.get("/nowhere")
    assert missing.status_code == 404 and missing.json() == {"code": "not_found", "message": "route not found"}
    assert daemon.client.get("/openapi.json").json()["info"]["title"] == "plugdock daemon"


def test_install_and_invoke_a_plugdock_tool(daemon: DaemonProcess) -> None:
    identifier = daemon.install(EXAMPLES / "echo_tool")
    assert identifier.startswith("plugdock/echo_tool:0.0.1@")
    events = daemon.dispatch("tool/invoke", "plugdock/echo_tool", {
        "provider": "echo_tool", "tool": "echo_tool", "credentials": {}, "tool_parameters": {"text": "via daemon"}})
    assert events[0] == {"code": 0, "message": "success",
                         "data": {"type": "text", "message": {"text": "via daemon"}, "meta": None}}
    assert len(events) == 2


def test_plugin_errors_reach_the_caller_as_the_host_expects(daemon: DaemonProcess) -> None:
    daemon.install(EXAMPLES / "echo_tool")
    (event,) = daemon.dispatch("tool/validate_credentials", "plugdock/echo_tool", {
        "provider": "echo_tool", "credentials": {"api_key": "invalid"}})
    assert event["code"] == -500
    outer = json.loads(event["message"])
    assert outer["error_type"] == "PluginInvokeError"
    inner = json.loads(outer["message"])
    assert inner["error_type"] == "ToolProviderCredentialValidationError"
    assert inner["message"] == "the API key is invalid"


def test_second_plugin_with_same_dependencies_shares_the_environment(daemon: DaemonProcess) -> None:
    daemon.install(EXAMPLES / "echo_tool")
    before = sorted(p.name for p in (daemon.home / "envs").iterdir())
    daemon.install(EXAMPLES / "typed_calculator")
    assert sorted(p.name for p in (daemon.home / "envs").iterdir()) == before  # reused: nothing new was built
    events = daemon.dispatch("tool/invoke", "plugdock/typed_calculator", {
        "provider": "typed_calculator", "tool": "add", "credentials": {}, "tool_parameters": {"a": 2, "b": 2}})
    assert events[0]["data"]["message"]["json_object"] == {"result": 4}


def test_an_official_sdk_plugin_runs_unchanged(daemon: DaemonProcess, work: Path) -> None:
    official = to_official(EXAMPLES / "echo_tool", work / "official_echo")
    manifest = official / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("name: echo_tool", "name: official_echo"))
    (official / "requirements.txt").write_text("dify-plugin>=0.10,<0.11\n")
    daemon.install(official)
    events = daemon.dispatch("tool/invoke", "plugdock/official_echo", {
        "provider": "echo_tool", "tool": "echo_tool", "credentials": {}, "tool_parameters": {"text": "official"}})
    assert text_of(events) == "official"


def test_model_plugin_streams_llm_chunks(daemon: DaemonProcess) -> None:
    daemon.install(EXAMPLES / "echo_model")
    events = daemon.dispatch("llm/invoke", "plugdock/echo_model", {
        "provider": "echo_model", "model_type": "llm", "model": "echo_model-echo", "credentials": {},
        "prompt_messages": [{"role": "user", "content": "one two three"}], "model_parameters": {}, "tools": [],
        "stop": [], "stream": True})
    assert [e["data"]["delta"]["message"]["content"] for e in events] == ["one", " two", " three"]
    (schema,) = daemon.dispatch("model/schema", "plugdock/echo_model", {
        "provider": "echo_model", "model_type": "llm", "model": "echo_model-echo", "credentials": {}})
    assert schema["data"]["model_schema"]["model"] == "echo_model-echo"


def test_storage_reverse_invocation_persists(daemon: DaemonProcess, work: Path) -> None:
    root = tool_plugin(work, "counter", """
n = int(self.session.storage.get("n").decode()) if self.session.storage.exist("n") else 0
self.session.storage.set("n", str(n + 1).encode())
yield self.create_text_message(str(n + 1))
""")
    daemon.install(root)
    call = {"provider": "counter", "tool": "counter", "credentials": {}, "tool_parameters": {}}
    assert [text_of(daemon.dispatch("tool/invoke", "tester/counter", call)) for _ in range(3)] == ["1", "2", "3"]
    daemon.install(root, tenant="t2")
    assert text_of(daemon.dispatch("tool/invoke", "tester/counter", call, tenant="t2")) == "1"  # per tenant


def test_plugin_crash_mid_stream_ends_that_stream_only(daemon: DaemonProcess, work: Path) -> None:
    root = tool_plugin(work, "crasher", """
yield self.create_text_message("before")
if tool_parameters.get("crash"):
    os._exit(3)
yield self.create_text_message("after")
""")
    daemon.install(root)
    events = daemon.dispatch("tool/invoke", "tester/crasher", {
        "provider": "crasher", "tool": "crasher", "credentials": {}, "tool_parameters": {"crash": True}})
    assert events[0]["data"]["message"]["text"] == "before"
    assert events[-1]["code"] == -500 and "exited with code 3" in events[-1]["message"]
    time.sleep(1.2)  # restart backoff
    again = daemon.dispatch("tool/invoke", "tester/crasher", {
        "provider": "crasher", "tool": "crasher", "credentials": {}, "tool_parameters": {}})
    assert text_of(again) == "beforeafter"


def test_plugin_that_cannot_start_says_why(daemon: DaemonProcess, work: Path) -> None:
    root = make_plugin(work / "broken", name="broken")
    (root / "tools" / "broken.py").write_text("import not_a_module_anywhere\n")
    daemon.install(root)
    (event,) = daemon.dispatch("tool/invoke", "tester/broken", {
        "provider": "broken", "tool": "broken", "credentials": {}, "tool_parameters": {}})
    assert event["code"] == -500
    message = json.loads(event["message"])["message"]
    assert "not_a_module_anywhere" in message and "unavailable" in message


def test_hanging_plugin_is_cut_by_the_execution_timeout(daemon: DaemonProcess, work: Path) -> None:
    root = tool_plugin(work, "sleeper", 'time.sleep(60)\nyield self.create_text_message("late")')
    (root / "main.py").write_text((root / "main.py").read_text().replace("MAX_REQUEST_TIMEOUT=120", ""))
    daemon.install(root)
    events = daemon.dispatch("tool/invoke", "tester/sleeper", {
        "provider": "sleeper", "tool": "sleeper", "credentials": {}, "tool_parameters": {}})
    assert "killed by timeout" in events[-1]["message"]  # cut, not waited out: "late" never came
    assert not any(e.get("data") and "late" in json.dumps(e["data"]) for e in events)


def test_non_json_output_is_logged_not_fatal(daemon: DaemonProcess, work: Path) -> None:
    root = tool_plugin(work, "noisy", 'os.write(2, b"noise on stderr\\n")\nyield self.create_text_message("ok")')
    daemon.install(root)
    assert text_of(daemon.dispatch("tool/invoke", "tester/noisy", {
        "provider": "noisy", "tool": "noisy", "credentials": {}, "tool_parameters": {}})) == "ok"
    logs = daemon.data(daemon.client.get("/plugin/t1/management/logs", params={"plugin_id": "tester/noisy"}))
    assert any("noise on stderr" in line for line in logs["lines"])


def test_bad_requests(daemon: DaemonProcess) -> None:
    daemon.install(EXAMPLES / "echo_tool")
    no_header = daemon.client.post("/plugin/t1/dispatch/tool/invoke", json={"data": {}})
    assert no_header.status_code == 400 and "X-Plugin-ID" in no_header.json()["message"]
    unknown = daemon.client.post("/plugin/t1/dispatch/tool/invoke", headers={"X-Plugin-ID": "x/y"}, json={})
    assert unknown.status_code == 404 and json.loads(unknown.json()["message"])["error_type"] == "PluginNotFoundError"
    malformed = daemon.client.post("/plugin/t1/dispatch/tool/invoke", headers={"X-Plugin-ID": "plugdock/echo_tool",
                                                                               "Content-Type": "application/json"},
                                   content=b"{not json")
    assert malformed.status_code == 400 and "invalid request" in json.loads(malformed.json()["message"])["message"]
    garbage = daemon.client.post("/plugin/t1/management/install/upload/package",
                                 files={"dify_pkg": ("x.difypkg", b"garbage")})
    # management errors: HTTP 200, the reason in the envelope (Dify raise_for_status()es before reading it)
    assert garbage.status_code == 200 and garbage.json()["code"] == -400
    assert "not a valid .difypkg" in garbage.json()["message"]
    bad_id = daemon.client.post("/plugin/t1/management/install/identifiers",
                                json={"plugin_unique_identifiers": ["nope"]})
    assert bad_id.status_code == 200 and bad_id.json()["code"] == -400
    assert "not a plugin unique identifier" in bad_id.json()["message"]


def test_list_and_declarations(daemon: DaemonProcess) -> None:
    daemon.install(EXAMPLES / "echo_tool")
    listing = daemon.data(daemon.client.get("/plugin/t1/management/list"))
    entry = next(p for p in listing["list"] if p["plugin_id"] == "plugdock/echo_tool")
    assert entry["declaration"]["tool"]["tools"][0]["identity"]["name"] == "echo_tool"
    assert entry["version"] == "0.0.1" and entry["runtime_type"] == "local"
    ids = daemon.data(daemon.client.get("/plugin/t1/management/installation/ids"))["plugin_ids"]
    assert "plugdock/echo_tool" in ids
    tools = daemon.data(daemon.client.get("/plugin/t1/management/tools"))
    assert any(t["provider"] == "echo_tool" for t in tools)
    assert daemon.data(daemon.client.get("/plugin/other-tenant/management/list"))["list"] == []


def test_uninstall_stops_the_process(daemon: DaemonProcess, work: Path) -> None:
    root = tool_plugin(work, "temp", 'yield self.create_text_message("here")')
    daemon.install(root)
    assert text_of(daemon.dispatch("tool/invoke", "tester/temp", {
        "provider": "temp", "tool": "temp", "credentials": {}, "tool_parameters": {}})) == "here"
    listing = daemon.data(daemon.client.get("/plugin/t1/management/list"))
    installation = next(p for p in listing["list"] if p["plugin_id"] == "tester/temp")
    before = set(daemon.plugin_pids())
    assert daemon.data(daemon.client.post("/plugin/t1/management/uninstall",
                                          json={"plugin_installation_id": installation["installation_id"]})) is True
    eventually(lambda: len(set(daemon.plugin_pids())) == len(before) - 1, "the uninstalled plugin's process remained")
    gone = daemon.client.post("/plugin/t1/dispatch/tool/invoke", headers={"X-Plugin-ID": "tester/temp"}, json={})
    assert gone.status_code == 404


def test_restart_keeps_installations_and_sigkill_leaves_no_orphans(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = DaemonProcess(home).start()
    try:
        first.install(EXAMPLES / "echo_tool")
        assert text_of(first.dispatch("tool/invoke", "plugdock/echo_tool", {
            "provider": "echo_tool", "tool": "echo_tool", "credentials": {}, "tool_parameters": {"text": "a"}})) == "a"
        children = first.plugin_pids()
        assert children
        first.stop(signal.SIGKILL)
        eventually(lambda: not any(alive(pid) for pid in children), "plugin processes outlived a SIGKILLed daemon")
    finally:
        first.stop()
    second = DaemonProcess(home).start()
    try:
        listing = second.data(second.client.get("/plugin/t1/management/list"))
        assert [p["plugin_id"] for p in listing["list"]] == ["plugdock/echo_tool"]
        assert text_of(second.dispatch("tool/invoke", "plugdock/echo_tool", {
            "provider": "echo_tool", "tool": "echo_tool", "credentials": {}, "tool_parameters": {"text": "b"}})) == "b"
    finally:
        second.stop()


def test_signature_policy_and_preinstall(tmp_path: Path) -> None:
    """With signatures enforced (the default), uploads need a trusted key; operator preinstalls do not."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from plugdock.packaging.build import build_package
    from plugdock.packaging.signature import sign_package

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = tmp_path / "trusted.public.pem"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1))
    d = DaemonProcess(tmp_path / "home", FORCE_VERIFYING_SIGNATURE="true",
                      THIRD_PARTY_SIGNATURE_VERIFICATION_ENABLED="true",  # the keys are trusted only when enabled
                      THIRD_PARTY_SIGNATURE_VERIFICATION_PUBLIC_KEYS=str(public))
    d.start("--preinstall", str(EXAMPLES / "echo_tool"), timeout=300)
    try:
        assert text_of(d.dispatch("tool/invoke", "plugdock/echo_tool", {
            "provider": "echo_tool", "tool": "echo_tool", "credentials": {}, "tool_parameters": {"text": "pre"}},
            tenant="default")) == "pre"
        unsigned = build_package(EXAMPLES / "typed_calculator").data
        refused = d.client.post("/plugin/t1/management/install/upload/package",
                                files={"dify_pkg": ("p.difypkg", unsigned)})
        assert refused.status_code == 200 and refused.json()["code"] == -400
        assert "not signed" in refused.json()["message"] and "FORCE_VERIFYING_SIGNATURE" in refused.json()["message"]
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        wrong = d.client.post("/plugin/t1/management/install/upload/package",
                              files={"dify_pkg": ("p.difypkg", sign_package(unsigned, other))})
        assert wrong.status_code == 200 and wrong.json()["code"] == -400 and "trusted keys" in wrong.json()["message"]
        good = d.data(d.client.post("/plugin/t1/management/install/upload/package",
                                    files={"dify_pkg": ("p.difypkg", sign_package(unsigned, key))}))
        assert good["manifest"]["verified"] is True and good["verification"] == {"authorized_category": "community"}
    finally:
        d.stop()
