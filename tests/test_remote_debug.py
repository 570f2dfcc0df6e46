"""Remote debugging: a plugdock plugin registers with a real TCP server that plays the daemon's side."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).parent.parent / "examples"


class FakeDebugDaemon:
    def __init__(self, key: str = "good-key") -> None:
        self.key = key
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.registration: list[dict[str, Any]] = []
        self.after: list[dict[str, Any]] = []
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn, conn.makefile("rwb") as stream:
            for raw in stream:
                if not raw.strip():
                    continue
                message = json.loads(raw)
                self.registration.append(message)
                if message["type"] == "handshake" and message["data"]["key"] != self.key:
                    stream.write(b"handshake failed, invalid key\n")
                    stream.flush()
                    self.done.set()
                    return
                if message["type"] == "end":
                    break
            request = {"session_id": "s1", "conversation_id": None, "message_id": None, "app_id": None,
                       "endpoint_id": None, "context": None, "event": "request",
                       "data": {"user_id": "u", "type": "tool", "action": "invoke_tool", "provider": "echo_tool",
                                "tool": "echo_tool", "credentials": {}, "tool_parameters": {"text": "over tcp"}}}
            stream.write(json.dumps(request).encode() + b"\n")
            stream.flush()
            for raw in stream:
                if raw.strip():
                    line = json.loads(raw)
                    self.after.append(line)
                    if line.get("event") == "session" and line["data"]["type"] == "end":
                        break
        self.done.set()


def start_debug(port: int, key: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "plugdock", "debug", str(EXAMPLES / "echo_tool"),
                             "--url", f"127.0.0.1:{port}"], env={**os.environ, "PLUGDOCK_DEBUG_KEY": key},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_registration_then_requests_over_tcp() -> None:
    daemon = FakeDebugDaemon()
    proc = start_debug(daemon.port, "good-key")
    try:
        assert daemon.done.wait(30), proc.stderr.read1(4000) if proc.stderr else b""  # type: ignore[union-attr]
    finally:
        proc.kill()
        proc.wait()
    kinds = [m["type"] for m in daemon.registration]
    assert kinds[0] == "handshake" and daemon.registration[0]["data"] == {"key": "good-key"}
    assert kinds[1] == "manifest_declaration" and kinds[-1] == "end"
    assert "tool_declaration" in kinds and "asset_chunk" in kinds
    manifest = daemon.registration[1]["data"]
    assert manifest["name"] == "echo_tool" and manifest["meta"]["runner"]["version"] == "3.12"
    (tools,) = [m["data"] for m in daemon.registration if m["type"] == "tool_declaration"]
    assert isinstance(tools, list) and tools[0]["identity"]["name"] == "echo_tool"
    assert tools[0]["tools"][0]["identity"]["name"] == "echo_tool"
    assets = [m["data"] for m in daemon.registration if m["type"] == "asset_chunk"]
    assert assets[-1]["end"] is True and assets[0]["filename"] == "icon.svg"
    assert base64.b64decode(assets[0]["data"]).startswith(b"<svg")
    streams = [ln["data"]["data"] for ln in daemon.after if ln.get("event") == "session"
               and ln["data"]["type"] == "stream"]
    assert streams[0] == {"type": "text", "message": {"text": "over tcp"}, "meta": None}


def test_bad_key_is_reported_and_not_retried() -> None:
    daemon = FakeDebugDaemon(key="right")
    proc = start_debug(daemon.port, "wrong")
    code = proc.wait(timeout=30)
    stderr = proc.stderr.read().decode()  # type: ignore[union-attr]
    assert code == 1
    assert "rejected the plugin" in stderr
    assert "handshake failed, invalid key" in stderr or "check the debug key" in stderr


def test_unreachable_daemon_gives_up_with_a_clear_message(tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    env_cmd = [sys.executable, "-c",
               "import plugdock.runtime.remote as r; r.RETRY_DELAYS = (0.1, 0.1); "
               "from plugdock.sdk.config import DifyPluginEnv; from pathlib import Path; "
               f"raise SystemExit(r.run_remote(DifyPluginEnv(INSTALL_METHOD='remote', REMOTE_INSTALL_KEY='k', "
               f"REMOTE_INSTALL_URL='127.0.0.1:{port}'), Path({str(EXAMPLES / 'echo_tool')!r})))"]
    proc = subprocess.run(env_cmd, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 1
    assert f"cannot reach the daemon at 127.0.0.1:{port}" in proc.stderr and "giving up" in proc.stderr


def test_a_plugin_that_cannot_load_is_one_line_before_any_connection(tmp_path: Path) -> None:
    """A class the registry cannot find is reported before connecting (no retries, no traceback mid-session)."""
    from conftest import make_plugin

    plugin = make_plugin(tmp_path / "demo")
    (plugin / "tools" / "demo.py").write_text("class DemoTool:\n    pass\n")
    with socket.socket() as sock:  # a port that would answer: the plugin must not even try it
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        env = {**os.environ, "INSTALL_METHOD": "remote", "REMOTE_INSTALL_URL": f"127.0.0.1:{port}",
               "REMOTE_INSTALL_KEY": "k"}
        result = subprocess.run([sys.executable, "-m", "main"], cwd=plugin, env=env, capture_output=True, text=True,
                                timeout=60, check=False)
        sock.settimeout(0)
        with contextlib.suppress(BlockingIOError):
            sock.accept()
            raise AssertionError("the plugin connected although it cannot load")
    assert result.returncode == 1
    assert result.stderr.strip() == ("plugdock: plugin failed to load: tools/demo.py: defines no concrete subclass "
                                     "of Tool")
