"""Remote debugging through the daemon: plugdock debug and the official SDK's remote mode register over TCP,
serve requests, and disappear on disconnect; bad keys, garbage and stalls are refused with one plain line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance_plugins import to_official
from daemon_harness import DaemonProcess

EXAMPLES = Path(__file__).parent.parent / "examples"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("home"), PLUGDOCK_REMOTE_INSTALLING_TIMEOUT="1").start()
    yield d
    d.stop()


def key(d: DaemonProcess, tenant: str = "t1") -> tuple[str, int]:
    data = d.data(d.client.post(f"/plugin/{tenant}/debugging/key"))
    return data["key"], data["port"]


def invoke(d: DaemonProcess, plugin_id: str, text: str) -> list[dict]:
    return d.dispatch("tool/invoke", plugin_id, {"provider": "echo_tool", "tool": "echo_tool", "credentials": {},
                                                 "tool_parameters": {"text": text}})


def test_plugdock_debug_registers_serves_and_leaves(daemon: DaemonProcess, tmp_path: Path) -> None:
    debug_key, port = key(daemon)
    assert key(daemon)[0] == debug_key  # one key per tenant, refreshed on each fetch
    key_file = tmp_path / "debug.key"
    key_file.write_text(debug_key + "\n")
    key_file.chmod(0o600)
    proc = subprocess.Popen([sys.executable, "-m", "plugdock", "debug", str(EXAMPLES / "echo_tool"), "--url",
                             f"127.0.0.1:{port}", "--key-file", str(key_file)], stderr=subprocess.PIPE)
    try:
        entry = daemon.wait_listed("plugdock/echo_tool")
        assert entry is not None and entry["runtime_type"] == "remote"
        assert entry["declaration"]["tool"]["tools"][0]["identity"]["name"] == "echo_tool"
        icon = daemon.client.get(f"/plugin/t1/asset/{entry['declaration']['icon']}")
        assert icon.status_code == 200 and icon.content.startswith(b"<svg")
        assert invoke(daemon, "plugdock/echo_tool", "debugging")[0]["data"]["message"]["text"] == "debugging"
    finally:
        proc.kill()
        proc.wait()
    daemon.wait_listed("plugdock/echo_tool", present=False)
    gone = daemon.client.post("/plugin/t1/dispatch/tool/invoke", headers={"X-Plugin-ID": "plugdock/echo_tool"},
                              json={})
    assert gone.status_code == 404


def test_official_sdk_remote_mode(daemon: DaemonProcess, official_python: str, tmp_path: Path) -> None:
    official = to_official(EXAMPLES / "echo_tool", tmp_path / "official")
    debug_key, port = key(daemon)
    env = {**os.environ, "INSTALL_METHOD": "remote", "REMOTE_INSTALL_URL": f"127.0.0.1:{port}",
           "REMOTE_INSTALL_KEY": debug_key}
    proc = subprocess.Popen([official_python, "-m", "main"], cwd=official, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        daemon.wait_listed("plugdock/echo_tool")
        assert invoke(daemon, "plugdock/echo_tool", "official remote")[0]["data"]["message"]["text"] == \
            "official remote"
    finally:
        proc.kill()
        proc.wait()
    daemon.wait_listed("plugdock/echo_tool", present=False)


def test_bad_key_is_refused(daemon: DaemonProcess) -> None:
    _, port = key(daemon)
    proc = subprocess.run([sys.executable, "-m", "plugdock", "debug", str(EXAMPLES / "echo_tool"), "--url",
                           f"127.0.0.1:{port}"], env={**os.environ, "PLUGDOCK_DEBUG_KEY": "not-a-key"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert "handshake failed, invalid key" in proc.stderr or "check the debug key" in proc.stderr


@pytest.mark.parametrize(("send", "expected"), [
    (b"hello there\n", b"handshake failed, expected"),
    (b"", b"handshake failed, no handshake within 1 s"),
])
def test_garbage_and_silence_get_one_plain_line(daemon: DaemonProcess, send: bytes, expected: bytes) -> None:
    _, port = key(daemon)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(send)
        answer = sock.makefile("rb").readline()
    assert answer.startswith(expected)


def test_stalled_registration_is_cut(daemon: DaemonProcess) -> None:
    debug_key, port = key(daemon)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b'{"type": "handshake", "data": {"key": "' + debug_key.encode() + b'"}}\n')
        answer = sock.makefile("rb").readline()
    assert answer.startswith(b"registration stalled")


def test_ctrl_c_in_either_debugging_plugin_is_no_traceback(official_python: str, tmp_path: Path) -> None:
    """Ctrl-C is how an author stops debugging: one line on the plugin's side, none but a note on the daemon's."""
    import signal

    d = DaemonProcess(tmp_path / "home").start()
    try:
        official = to_official(EXAMPLES / "echo_tool", tmp_path / "official")
        debug_key, port = key(d)
        env = {**os.environ, "INSTALL_METHOD": "remote", "REMOTE_INSTALL_URL": f"127.0.0.1:{port}",
               "REMOTE_INSTALL_KEY": debug_key}
        sdk = subprocess.Popen([official_python, "-m", "main"], cwd=official, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
        try:
            d.wait_listed("plugdock/echo_tool")
        finally:
            sdk.send_signal(signal.SIGINT)
            sdk.communicate(timeout=60)
        d.wait_listed("plugdock/echo_tool", present=False)
        ours = subprocess.Popen([sys.executable, "-m", "plugdock", "debug", str(EXAMPLES / "echo_tool"), "--daemon",
                                 d.url, "--tenant", "t1"], env={**os.environ, "PLUGDOCK_KEY": "test-server-key"},
                                stderr=subprocess.PIPE, text=True)
        try:
            d.wait_listed("plugdock/echo_tool")
        finally:
            ours.send_signal(signal.SIGINT)
            _, err = ours.communicate(timeout=60)
        assert ours.returncode == 130 and "Traceback" not in err and "KeyboardInterrupt" not in err
        d.wait_listed("plugdock/echo_tool", present=False)
    finally:
        d.stop()
    assert d.proc is not None and d.proc.stderr is not None
    log = d.proc.stderr.read().decode()
    assert "Traceback" not in log
    assert log.count("plugdock: debugging plugin plugdock/echo_tool disconnected") == 2
