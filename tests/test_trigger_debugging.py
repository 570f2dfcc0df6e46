"""Trigger plugins over remote debugging: ``plugdock debug`` and the official SDK's remote mode register a
trigger plugin (``trigger_declaration`` in the handshake) and the daemon's trigger routes reach it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance_plugins import to_official
from daemon_harness import DaemonProcess
from trigger_requests import MESSAGE, SUBSCRIPTION, webhook

EXAMPLE = Path(__file__).parent.parent / "examples" / "signed_webhook"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("home"), PLUGDOCK_REMOTE_INSTALLING_TIMEOUT="1").start()
    yield d
    d.stop()


def _dispatch(d: DaemonProcess) -> list[dict[str, Any]]:
    return d.dispatch("trigger/dispatch_event", "plugdock/signed_webhook", {
        "provider": "signed_webhook", "subscription": SUBSCRIPTION, "raw_http_request": webhook(MESSAGE),
        "credentials": None, "credential_type": None})  # the host always sends both; the official SDK needs them


def _run(d: DaemonProcess, command: list[str], cwd: Path | None = None, **env: str) -> None:
    proc = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        entry = d.wait_listed("plugdock/signed_webhook")
        assert entry is not None and entry["runtime_type"] == "remote"
        assert [e["identity"]["name"] for e in entry["declaration"]["trigger"]["events"]] == ["message_posted"]
        listed = d.data(d.client.get("/plugin/t1/management/triggers", params={"page": 1, "page_size": 10}))
        assert [t["provider"] for t in listed] == ["signed_webhook"]
        answer = _dispatch(d)
        assert (answer[0].get("data") or {}).get("events") == ["message_posted"], answer
    finally:
        proc.kill()
        proc.wait()
    d.wait_listed("plugdock/signed_webhook", present=False)


def test_plugdock_debug_serves_a_trigger(daemon: DaemonProcess, tmp_path: Path) -> None:
    data = daemon.data(daemon.client.post("/plugin/t1/debugging/key"))
    key_file = tmp_path / "debug.key"
    key_file.write_text(data["key"] + "\n")
    key_file.chmod(0o600)
    _run(daemon, [sys.executable, "-m", "plugdock", "debug", str(EXAMPLE), "--url", f"127.0.0.1:{data['port']}",
                  "--key-file", str(key_file)])


def test_official_sdk_remote_mode_serves_a_trigger(daemon: DaemonProcess, official_python: str,
                                                   tmp_path: Path) -> None:
    official = to_official(EXAMPLE, tmp_path / "official")
    data = daemon.data(daemon.client.post("/plugin/t1/debugging/key"))
    _run(daemon, [official_python, "-m", "main"], cwd=official, INSTALL_METHOD="remote",
         REMOTE_INSTALL_URL=f"127.0.0.1:{data['port']}", REMOTE_INSTALL_KEY=data["key"])
