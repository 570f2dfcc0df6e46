"""The remote-debug port without a key (issue 12, item 6), against a real ``plugdock serve``: connections reset
mid-handshake give their slot back (260 of them once closed the port until a restart), the handshake line is
capped before any key is checked, and oversized lines do not grow the daemon."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon_harness import DaemonProcess, eventually

EXAMPLES = Path(__file__).parent.parent / "examples"
HANDSHAKE_CAP = 4096  # the default PLUGDOCK_REMOTE_INSTALLING_MAX_HANDSHAKE
WAIT = 60.0
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("debug_port")).start()
    yield d
    d.stop()


def debug_key(d: DaemonProcess, tenant: str = "t1") -> tuple[str, int]:
    data = d.data(d.client.post(f"/plugin/{tenant}/debugging/key"))
    return data["key"], data["port"]


def reset_after(port: int, partial: bytes) -> None:
    """Send ``partial`` (no newline), then abort the connection with a TCP reset."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.sendall(partial)
    sock.close()


def first_line(port: int, send: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(send)
        return sock.makefile("rb").readline()


def port_serves_again(port: int) -> bytes:
    """The daemon sees the resets in its own time: poll (bounded) until a garbage line gets the ordinary
    refusal instead of "too many debugging connections"."""
    def served() -> bytes | None:
        answer = first_line(port, b"hello there\n")
        return None if answer.startswith(b"too many") else answer

    return eventually(served, "the debugging port still refused with \"too many\"", WAIT)


def registers(d: DaemonProcess, key: str, port: int) -> bool:
    """``plugdock debug`` registers the echo tool, which then appears in the tenant's list (False when it
    exits first, refused)."""
    proc = subprocess.Popen([sys.executable, "-m", "plugdock", "debug", str(EXAMPLES / "echo_tool"), "--url",
                             f"127.0.0.1:{port}"], env={**os.environ, "PLUGDOCK_DEBUG_KEY": key},
                            stderr=subprocess.PIPE)
    def outcome() -> tuple[bool] | None:
        if proc.poll() is not None:
            return (False,)
        listing = d.data(d.client.get("/plugin/t1/management/list"))["list"]
        if any(p["plugin_id"] == "plugdock/echo_tool" and p["runtime_type"] == "remote" for p in listing):
            return (True,)
        return None

    try:
        return eventually(outcome, "plugdock debug neither registered nor exited", WAIT)[0]
    finally:
        proc.kill()
        proc.wait()
        d.wait_listed("plugdock/echo_tool", present=False)  # gone again before the next test registers it


def rss_bytes(d: DaemonProcess) -> int:
    assert d.proc is not None
    status = Path(f"/proc/{d.proc.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) * 1024


def test_connections_reset_mid_handshake_give_their_slots_back(daemon: DaemonProcess) -> None:
    key, port = debug_key(daemon)
    for _ in range(300):  # more than the 256 connections allowed at once
        reset_after(port, b'{"type": "handshake", "da')
    assert port_serves_again(port).startswith(b"handshake failed, expected")
    assert registers(daemon, key, port)


def test_registrations_reset_after_a_valid_handshake_give_the_tenants_slots_back(daemon: DaemonProcess) -> None:
    key, port = debug_key(daemon)
    handshake = b'{"type": "handshake", "data": {"key": "' + key.encode() + b'"}}\n'
    for _ in range(40):  # more than the 16 debugging plugins a tenant may have at once
        reset_after(port, handshake + b'{"type": "manifest_declaration", "da')
    # the resets are seen in the daemon's own time
    eventually(lambda: registers(daemon, key, port), "the tenant's debugging slots were never given back", WAIT)


def test_a_handshake_line_over_the_cap_is_refused_naming_the_limit(daemon: DaemonProcess) -> None:
    _, port = debug_key(daemon)
    answer = first_line(port, b"x" * (HANDSHAKE_CAP + 1))  # no newline: the daemon stops reading at the cap
    assert answer == (f"handshake failed, the handshake line is over the {HANDSHAKE_CAP}-byte limit "
                      "(PLUGDOCK_REMOTE_INSTALLING_MAX_HANDSHAKE)\n").encode()
    assert first_line(port, b'{"type": "handshake", "data": {"key": "' + b"k" * 100 + b'"}}\n') == \
        b"handshake failed, invalid key\n"  # a line under the cap is read as before


def test_parked_oversized_handshake_lines_do_not_grow_the_daemon(daemon: DaemonProcess) -> None:
    key, port = debug_key(daemon)
    count, size = 40, 5 * 1024 * 1024  # the review's attack: 200 MiB of daemon memory
    before = rss_bytes(daemon)
    parked = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
            parked.append(sock)
            with contextlib.suppress(OSError):  # the daemon refused and closed before taking it all
                sock.sendall(b"x" * size)
        grown = rss_bytes(daemon) - before  # measured with every connection still open
    finally:
        for sock in parked:
            sock.close()
    assert grown < count * size // 8, f"the daemon grew by {grown} bytes for {count * size} bytes sent"
    assert port_serves_again(port).startswith(b"handshake failed, expected")
    assert registers(daemon, key, port)
