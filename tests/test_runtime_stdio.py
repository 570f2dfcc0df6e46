"""The plugin runtime over real stdio: a real plugin subprocess, driven line by line as a daemon would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon_harness import eventually
from wire import PluginProcess, stream_data

from conftest import make_plugin

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture
def echo() -> PluginProcess:
    plugin = PluginProcess(EXAMPLES / "echo_tool")
    plugin.ready()
    yield plugin
    plugin.close()


def custom_tool(tmp_path: Path, body: str, env_name: str = "demo") -> Path:
    root = make_plugin(tmp_path / env_name)
    # settings passed to DifyPluginEnv(...) win over the environment, so let these tests set them by env
    (root / "main.py").write_text((root / "main.py").read_text().replace("MAX_REQUEST_TIMEOUT=120", ""))
    (root / "tools" / "demo.py").write_text(
        "import time\nfrom collections.abc import Generator\nfrom typing import Any\n"
        "from plugdock.sdk import Tool, ToolInvokeMessage\n\n\n"
        "class DemoTool(Tool):\n"
        "    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:\n"
        + "".join(f"        {line}\n" for line in body.strip().splitlines())
    )
    return root


def invoke(plugin: PluginProcess, params: dict, **kw: object) -> list:
    sid = plugin.request({"type": "tool", "action": "invoke_tool", "provider": "demo", "tool": "demo",
                          "credentials": {}, "tool_parameters": params})
    return plugin.session(sid, **kw)  # type: ignore[arg-type]


def test_first_lines_are_manifest_log_and_heartbeat() -> None:
    plugin = PluginProcess(EXAMPLES / "echo_tool")
    first = plugin.next_line()
    assert first is not None and first["name"] == "echo_tool" and "event" not in first
    plugin.ready()
    assert plugin.close() == 0


def test_invoke_tool_streams_messages_then_end(echo: PluginProcess) -> None:
    sid = echo.request({"type": "tool", "action": "invoke_tool", "provider": "echo_tool", "tool": "echo_tool",
                        "credentials": {}, "tool_parameters": {"text": "héllo"}})
    messages = echo.session(sid)
    assert stream_data(messages) == [
        {"type": "text", "message": {"text": "héllo"}, "meta": None},
        {"type": "json", "message": {"json_object": {"text": "héllo", "length": 5}}, "meta": None},
    ]
    assert messages[-1] == {"type": "end", "data": {}}


def test_lines_are_compact_json_followed_by_a_blank_line(echo: PluginProcess) -> None:
    sid = echo.request({"type": "tool", "action": "validate_tool_credentials", "provider": "echo_tool",
                        "credentials": {}})
    echo.session(sid)
    session_lines = [ln for ln in echo.raw if sid.encode() in ln]
    assert session_lines and all(b'": ' not in ln for ln in session_lines)
    raw = b"".join(echo.raw)
    assert session_lines[0] + b"\n" in raw


def test_errors_are_per_session_and_precise(echo: PluginProcess) -> None:
    bad = echo.request({"type": "tool", "action": "validate_tool_credentials", "provider": "echo_tool",
                        "credentials": {"api_key": "invalid"}})
    unknown = echo.request({"type": "tool", "action": "explode"})
    missing = echo.request({"type": "tool", "action": "invoke_tool", "provider": "echo_tool", "tool": "nope",
                            "credentials": {}, "tool_parameters": {}})
    no_params = echo.request({"type": "tool", "action": "invoke_tool", "provider": "echo_tool", "tool": "echo_tool"})
    errors = {sid: echo.session(sid)[0]["data"] for sid in (bad, unknown, missing, no_params)}
    assert errors[bad]["error_type"] == "ToolProviderCredentialValidationError"
    assert errors[bad]["message"] == "the API key is invalid"
    assert errors[unknown]["error_type"] == "UnknownActionError"
    assert "known tool actions: get_tool_runtime_parameters, invoke_tool" in errors[unknown]["message"]
    assert errors[missing] == {"error_type": "ValueError", "args": {},
                               "message": "Tool `nope` not found for provider `echo_tool`"}
    assert errors[no_params]["message"] == "request data is missing 'tool_parameters'"
    # and the plugin still serves
    ok = echo.request({"type": "tool", "action": "validate_tool_credentials", "provider": "echo_tool",
                       "credentials": {}})
    assert stream_data(echo.session(ok)) == [{"result": True}]


def test_malformed_lines_do_not_stop_the_plugin(echo: PluginProcess) -> None:
    echo.send(b"not json at all")
    assert "malformed request line" in echo.wait_for(lambda ln: ln.get("event") == "error")["data"]["error"]
    echo.send(b"[1, 2]")
    assert "expected a JSON object" in echo.wait_for(lambda ln: ln.get("event") == "error")["data"]["error"]
    echo.send({"event": "request", "data": {}})
    assert "session_id" in echo.wait_for(lambda ln: ln.get("event") == "error")["data"]["error"]
    echo.send({"session_id": "x1", "event": "request", "data": "nope"})
    assert echo.session("x1")[0]["data"]["error_type"] == "RequestDataError"
    ok = echo.request({"type": "tool", "action": "validate_tool_credentials", "provider": "echo_tool",
                       "credentials": {}})
    assert stream_data(echo.session(ok)) == [{"result": True}]


def test_exit_cleanly_when_stdin_closes(echo: PluginProcess) -> None:
    echo.proc.stdin.close()  # type: ignore[union-attr]
    assert echo.proc.wait(timeout=60) == 0  # the bound only stops a broken build hanging


def test_exit_when_the_parent_dies(tmp_path: Path) -> None:
    """A parent that is SIGKILLed leaves no orphan: the plugin notices and exits."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-m', 'main'], cwd={str(EXAMPLES / 'echo_tool')!r}, "
        "stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,\n"
        "    env={**__import__('os').environ, 'INSTALL_METHOD': 'local'})\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE)
    child_pid = int(parent.stdout.readline())  # type: ignore[union-attr]
    time.sleep(1.0)
    parent.kill()
    parent.wait()

    def gone() -> bool:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            return True
        return False

    try:
        eventually(gone, "the plugin outlived its parent", every=0.05)
    except AssertionError:
        os.kill(child_pid, signal.SIGKILL)  # leave no orphan behind a failed test
        raise


def test_handler_exceptions_and_wrong_yields(tmp_path: Path) -> None:
    root = custom_tool(tmp_path, """
mode = tool_parameters.get("mode")
if mode == "raise":
    raise RuntimeError("boom")
if mode == "junk":
    yield 42
yield self.create_text_message("fine")
""")
    plugin = PluginProcess(root)
    plugin.ready()
    try:
        raised = invoke(plugin, {"mode": "raise"})
        assert raised[0]["data"]["error_type"] == "RuntimeError" and raised[0]["data"]["message"] == "boom"
        junk = invoke(plugin, {"mode": "junk"})
        assert junk[0]["data"]["error_type"] == "TypeError"
        assert "yielded int" in junk[0]["data"]["message"]
        assert stream_data(invoke(plugin, {}))[0]["message"]["text"] == "fine"
    finally:
        plugin.close()


def test_traceback_only_in_debug_mode(tmp_path: Path) -> None:
    root = custom_tool(tmp_path, 'raise KeyError("k")\nyield self.create_text_message("x")')
    plugin = PluginProcess(root, env={"PLUGDOCK_DEBUG": "true"})
    plugin.ready()
    try:
        error = invoke(plugin, {})[0]["data"]
        assert "Traceback" in error["args"]["traceback"] and "KeyError" in error["args"]["traceback"]
    finally:
        plugin.close()


def test_hanging_handler_times_out_alone(tmp_path: Path) -> None:
    root = custom_tool(tmp_path, """
if tool_parameters.get("hang"):
    time.sleep(30)
yield self.create_text_message("quick")
""")
    plugin = PluginProcess(root, env={"MAX_REQUEST_TIMEOUT": "1"})
    plugin.ready()
    try:
        hung = plugin.request({"type": "tool", "action": "invoke_tool", "provider": "demo", "tool": "demo",
                               "credentials": {}, "tool_parameters": {"hang": True}})
        quick = invoke(plugin, {})
        assert stream_data(quick)[0]["message"]["text"] == "quick"
        error = plugin.session(hung)[0]["data"]
        assert error["error_type"] == "RequestTimeoutError"
        assert "MAX_REQUEST_TIMEOUT=1" in error["message"]
    finally:
        plugin.close()


def test_large_text_is_chunked_and_large_json_is_refused(tmp_path: Path) -> None:
    root = custom_tool(tmp_path, """
if tool_parameters.get("json"):
    yield self.create_json_message({"x": "y" * 300000})
yield self.create_text_message("z" * 300000)
""")
    plugin = PluginProcess(root, env={"PLUGIN_RUNTIME_MAX_BUFFER_SIZE": "65536"})
    plugin.ready()
    try:
        text = stream_data(invoke(plugin, {}))
        assert len(text) > 1 and "".join(t["message"]["text"] for t in text) == "z" * 300000
        error = invoke(plugin, {"json": True})[0]["data"]
        assert error["error_type"] == "MessageTooLargeError"
        assert "65536-byte line limit" in error["message"]
        assert all(len(line) <= 65536 for line in plugin.raw)
    finally:
        plugin.close()


def test_blobs_are_sent_in_chunks(tmp_path: Path) -> None:
    root = custom_tool(tmp_path, 'yield self.create_blob_message(bytes(range(256)) * 100, meta={"mime_type": "a/b"})')
    plugin = PluginProcess(root)
    plugin.ready()
    try:
        chunks = stream_data(invoke(plugin, {}))
        assert {c["type"] for c in chunks} == {"blob_chunk"}
        assert [c["message"]["sequence"] for c in chunks] == list(range(len(chunks)))
        assert chunks[-1]["message"]["end"] is True and chunks[-1]["message"]["blob"] == ""
        import base64

        data = b"".join(base64.b64decode(c["message"]["blob"]) for c in chunks)
        assert data == bytes(range(256)) * 100 and chunks[0]["meta"] == {"mime_type": "a/b"}
    finally:
        plugin.close()


def test_many_sessions_in_flight(tmp_path: Path) -> None:
    # all 64 must be in the tool at once to pass the barrier: concurrent, not one after another
    root = custom_tool(tmp_path, 'import threading\n'
                                 'globals().setdefault("B", threading.Barrier(64)).wait(timeout=120)\n'
                                 'yield self.create_text_message(str(tool_parameters["n"]))')
    plugin = PluginProcess(root)
    plugin.ready()
    try:
        sids = {plugin.request({"type": "tool", "action": "invoke_tool", "provider": "demo", "tool": "demo",
                                "credentials": {}, "tool_parameters": {"n": n}}): n for n in range(64)}
        for sid, n in sids.items():
            assert stream_data(plugin.session(sid, timeout=180))[0]["message"]["text"] == str(n)
    finally:
        plugin.close()


def test_print_becomes_a_log_event_not_wire_noise(tmp_path: Path) -> None:
    root = custom_tool(tmp_path, 'print("hello from print")\nyield self.create_text_message("ok")')
    plugin = PluginProcess(root)
    plugin.ready()
    try:
        invoke(plugin, {})
        log = plugin.wait_for(lambda ln: ln.get("event") == "log" and "hello from print" in ln["data"]["message"])
        assert log["data"]["level"] == "INFO"
        assert all(line.strip() == b"" or line.startswith(b"{") for line in plugin.raw)
    finally:
        plugin.close()


def test_storage_reverse_invocation_over_stdio(tmp_path: Path) -> None:
    root = custom_tool(tmp_path, """
self.session.storage.set("k", b"value")
yield self.create_text_message(self.session.storage.get("k").decode())
yield self.create_text_message(str(self.session.storage.exist("missing")))
""")
    plugin = PluginProcess(root)
    plugin.ready()
    store: dict[str, str] = {}

    def answer(p: PluginProcess, sid: str, invoke_data: dict) -> None:
        assert invoke_data["type"] == "storage"
        req, rid = invoke_data["request"], invoke_data["backwards_request_id"]
        if req["opt"] == "set":
            store[req["key"]] = req["value"]
            p.backwards(sid, rid, "response", {"data": "ok"}, "struct")
        elif req["opt"] == "get":
            p.backwards(sid, rid, "response", {"data": store[req["key"]]}, "struct")
        else:
            p.backwards(sid, rid, "response", {"data": req["key"] in store}, "struct")
        p.backwards(sid, rid, "end")

    try:
        texts = [m["message"]["text"] for m in stream_data(invoke(plugin, {}, answer=answer))]
        assert texts == ["value", "False"]
        assert store == {"k": b"value".hex()}
    finally:
        plugin.close()


def test_reverse_invocation_error_reaches_the_tool(tmp_path: Path) -> None:
    root = custom_tool(tmp_path, 'self.session.storage.get("k")\nyield self.create_text_message("unreached")')
    plugin = PluginProcess(root)
    plugin.ready()

    def deny(p: PluginProcess, sid: str, invoke_data: dict) -> None:
        rid = invoke_data["backwards_request_id"]
        p.backwards(sid, rid, "error", None, "permission denied, you need to enable storage access in plugin manifest")
        p.backwards(sid, rid, "end")

    try:
        error = invoke(plugin, {}, answer=deny)[0]["data"]
        assert error["error_type"] == "BackwardsInvocationError"
        assert "enable storage access" in error["message"]
    finally:
        plugin.close()


def test_a_plugin_that_fails_to_load_says_why(tmp_path: Path) -> None:
    root = make_plugin(tmp_path / "broken")
    (root / "tools" / "demo.py").write_text("import does_not_exist\n")
    plugin = PluginProcess(root)
    error = plugin.wait_for(lambda ln: ln.get("event") == "error")
    assert "tools/demo.py: import failed: ModuleNotFoundError" in error["data"]["error"]
    assert plugin.proc.wait(timeout=5) == 1


def test_oversized_request_line_is_dropped_with_a_named_limit(tmp_path: Path) -> None:
    plugin = PluginProcess(EXAMPLES / "echo_tool", env={"PLUGIN_RUNTIME_MAX_BUFFER_SIZE": "4096"})
    plugin.ready()
    try:
        plugin.send(json.dumps({"session_id": "big", "event": "request", "data": {"x": "y" * 10000}}).encode())
        error = plugin.wait_for(lambda ln: ln.get("event") == "error")
        assert "exceeded the 4096-byte limit" in error["data"]["error"]
        ok = plugin.request({"type": "tool", "action": "validate_tool_credentials", "provider": "echo_tool",
                             "credentials": {}})
        assert stream_data(plugin.session(ok)) == [{"result": True}]
    finally:
        plugin.close()
