"""A caller that reads nothing while a plugin streams: the daemon's memory stays bounded (the plugin is held back
through its pipe), the stalled session is cut with a named error, and the plugin keeps serving others."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon_harness import KEY, DaemonProcess, eventually

from conftest import make_plugin

pytestmark = pytest.mark.slow
STREAMER = '''from plugdock.sdk import Tool


class T(Tool):
    def _invoke(self, tool_parameters):
        count = int(tool_parameters.get("count", 1))
        for _ in range(count):
            yield self.create_text_message("x" * (1 << 20))
'''
BUFFER = 1 << 20


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    tmp = tmp_path_factory.mktemp("streaming")
    d = DaemonProcess(tmp / "home", PLUGDOCK_SESSION_BUFFER=str(BUFFER), PLUGDOCK_SESSION_STALL_TIMEOUT="3").start()
    root = make_plugin(tmp / "streamer", name="streamer")
    (root / "tools" / "streamer.py").write_text(STREAMER)
    d.install(root)
    yield d
    d.stop()


def logs(d: DaemonProcess) -> list[str]:
    answer = d.data(d.client.get("/plugin/t1/management/logs", params={"plugin_id": "tester/streamer"}))
    return [str(line) for line in answer["lines"]]


def invoke(count: int) -> bytes:
    body = json.dumps({"user_id": "u", "data": {"provider": "streamer", "tool": "streamer", "credentials": {},
                                                "tool_parameters": {"count": count}}}).encode()
    return (b"POST /plugin/t1/dispatch/tool/invoke HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-Api-Key: " + KEY.encode() + b"\r\nX-Plugin-ID: tester/streamer\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def test_a_caller_that_reads_nothing_is_cut_and_the_daemon_stays_small(daemon: DaemonProcess) -> None:
    assert daemon.proc is not None
    daemon.dispatch("tool/invoke", "tester/streamer", {"provider": "streamer", "tool": "streamer",
                                                       "credentials": {}, "tool_parameters": {"count": 1}})
    before = rss(daemon.proc.pid)
    stalled = socket.create_connection(("127.0.0.1", daemon.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    stalled.sendall(invoke(300))  # 300 MiB of output, never read
    eventually(lambda: any("cut: its caller stopped reading" in line for line in logs(daemon)),
               "the stalled session was never cut", every=0.5)
    grown = rss(daemon.proc.pid) - before
    assert grown < 120 * 2**20, f"the daemon grew by {grown // 2**20} MiB for a caller that read nothing"
    # the plugin still answers other callers
    events = daemon.dispatch("tool/invoke", "tester/streamer", {"provider": "streamer", "tool": "streamer",
                                                                "credentials": {}, "tool_parameters": {"count": 2}})
    assert sum(1 for e in events if e["code"] == 0) == 2, events[-1:]
    # the stalled caller, reading at last, finds its session cut with the reason
    stalled.settimeout(30)
    received = bytearray()
    while b"SessionStalledError" not in received[-65536:] and len(received) < 80 * 2**20:
        chunk = stalled.recv(1 << 20)
        if not chunk:
            break
        received += chunk
    stalled.close()
    assert b"SessionStalledError" in received and b"PLUGDOCK_SESSION_BUFFER" in received
