"""Denial of service on the HTTP port without a key (issue 12, item 5), against a real ``plugdock serve``:
idle sockets beyond the caps are refused at once with the limit named and the daemon keeps answering;
silent, dribbling and idle keep-alive connections are closed; the open-file limit is raised at start.

Attackers connect from other loopback addresses (127.0.0.2...), so that the key holder on 127.0.0.1 is
another peer, as Dify is on another address than an attacker. All traffic stays on loopback."""

from __future__ import annotations

import os
import resource
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon_harness import KEY, DaemonProcess, eventually
from plugdock.daemon.http.connections import FD_RESERVE, OPEN_FILES_CAP, connection_budget
from plugdock.daemon.settings import Settings
from plugdock.errors import PlugdockError

pytestmark = pytest.mark.slow
PER_PEER = 50
TOTAL = 120
WAIT = 60.0  # generous bound for anything the daemon should do within a second or two


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """Caps small enough to exceed cheaply; a head timeout long enough that held sockets stay held."""
    d = DaemonProcess(tmp_path_factory.mktemp("capped"), PLUGDOCK_MAX_CONNECTIONS=str(TOTAL),
                      PLUGDOCK_MAX_CONNECTIONS_PER_PEER=str(PER_PEER), PLUGDOCK_HEADER_TIMEOUT="120").start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def timed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("timed"), PLUGDOCK_HEADER_TIMEOUT="1",
                      PLUGDOCK_KEEP_ALIVE_TIMEOUT="1").start()
    yield d
    d.stop()


def open_idle(d: DaemonProcess, source: str, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", d.port), timeout=WAIT, source_address=(source, 0))
        sockets.append(sock)
    return sockets


def answered(sockets: list[socket.socket], expected: int) -> dict[socket.socket, bytes]:
    """Read every socket that the daemon answers and closes, until ``expected`` of them have ended (or the
    bound passes): what each received."""
    received = {sock: b"" for sock in sockets}
    ended: set[socket.socket] = set()
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + WAIT
        while len(ended) < expected and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=1):
                sock = key.fileobj  # type: ignore[assignment]
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    received[sock] += chunk
                else:
                    ended.add(sock)
                    selector.unregister(sock)
    return {sock: received[sock] for sock in ended}


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def open_fds(d: DaemonProcess) -> int:
    assert d.proc is not None
    return len(os.listdir(f"/proc/{d.proc.pid}/fd"))


def health_from(d: DaemonProcess, source: str) -> bytes:
    """One keyed GET /health/check from ``source``: the whole answer."""
    with socket.create_connection(("127.0.0.1", d.port), timeout=WAIT, source_address=(source, 0)) as sock:
        sock.sendall(f"GET /health/check HTTP/1.1\r\nHost: x\r\nX-Api-Key: {KEY}\r\nConnection: close\r\n\r\n"
                     .encode())
        return read_to_end(sock)


def read_to_end(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def eventually_healthy(d: DaemonProcess, source: str) -> bytes:
    """Closed sockets are released when the daemon sees them close: poll until ``source`` is served."""
    def served() -> bytes | None:
        answer = health_from(d, source)
        return answer if answer.startswith(b"HTTP/1.1 200") else None

    return eventually(served, f"{source} was never served again", WAIT)


def test_idle_sockets_beyond_the_per_peer_cap_are_refused_and_the_daemon_keeps_answering(
        capped: DaemonProcess) -> None:
    before = open_fds(capped)
    attackers = open_idle(capped, "127.0.0.2", 1100)  # the review's count: it pinned 1,024 fds
    try:
        refused = answered(attackers, 1100 - PER_PEER)
        assert len(refused) == 1100 - PER_PEER
        assert all(answer.startswith(b"HTTP/1.1 503") and b"from 127.0.0.2 (limit 50, "
                   b"PLUGDOCK_MAX_CONNECTIONS_PER_PEER)" in answer for answer in refused.values())
        response = capped.client.get("/health/check")  # the key holder, from 127.0.0.1
        assert response.status_code == 200 and response.json()["status"] == "ok"
        assert open_fds(capped) <= before + PER_PEER + 20  # the held ones, and nothing for the refused
    finally:
        close_all(attackers)
    assert eventually_healthy(capped, "127.0.0.2").startswith(b"HTTP/1.1 200")  # its slots were given back


def test_the_total_cap_refuses_with_its_name_and_answers_at_once(capped: DaemonProcess) -> None:
    held = open_idle(capped, "127.0.0.3", PER_PEER) + open_idle(capped, "127.0.0.4", PER_PEER)
    over = open_idle(capped, "127.0.0.5", PER_PEER)
    try:
        # At most TOTAL - 2 * PER_PEER slots were left (fewer while the key holder's keep-alive one lasts)
        refused = answered(over, PER_PEER - (TOTAL - 2 * PER_PEER))
        assert len(refused) >= PER_PEER - (TOTAL - 2 * PER_PEER)
        assert all(b"too many open connections (limit 120, PLUGDOCK_MAX_CONNECTIONS)" in answer
                   for answer in refused.values())
        # Every slot is taken: a newcomer is told so at once instead of hanging.
        answer = health_from(capped, "127.0.0.1")
        assert answer.startswith(b"HTTP/1.1 503") and b"PLUGDOCK_MAX_CONNECTIONS)" in answer
    finally:
        close_all(held + over)
    assert eventually_healthy(capped, "127.0.0.1").startswith(b"HTTP/1.1 200")


def test_a_silent_connection_is_closed_after_the_head_timeout(timed: DaemonProcess) -> None:
    with socket.create_connection(("127.0.0.1", timed.port), timeout=WAIT) as sock:
        assert read_to_end(sock) == b""  # closed without a word: it asked nothing


@pytest.mark.parametrize("after_a_response", [False, True])
def test_a_head_dribbled_a_byte_at_a_time_is_cut_with_the_limit_named(timed: DaemonProcess,
                                                                      after_a_response: bool) -> None:
    with socket.create_connection(("127.0.0.1", timed.port), timeout=WAIT) as sock:
        if after_a_response:  # on a keep-alive connection, the next head has the same deadline
            sock.sendall(b"GET /health/check HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /health/check HTTP/1.1\r\nX-Slow: ")
        sock.settimeout(0.25)
        answer = b""
        for _ in range(int(WAIT / 0.25)):  # a byte every quarter second, until the daemon hangs up
            try:
                sock.send(b"a")
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                break
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"the request head did not arrive within 1 s" in answer and b"PLUGDOCK_HEADER_TIMEOUT" in answer


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length, leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_an_idle_keep_alive_connection_is_closed(timed: DaemonProcess) -> None:
    with socket.create_connection(("127.0.0.1", timed.port), timeout=WAIT) as sock:
        sock.sendall(b"GET /health/check HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        assert read_to_end(sock) == b""


def test_the_open_file_limit_is_raised_at_start(tmp_path: Path) -> None:
    saved = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard = saved[1]
    expected = OPEN_FILES_CAP if hard == resource.RLIM_INFINITY else min(hard, OPEN_FILES_CAP)
    if expected <= 512:
        pytest.skip(f"the hard open-file limit here ({hard}) leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))  # inherited by the daemon
    try:
        d = DaemonProcess(tmp_path / "home")
        d.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, saved)
    try:
        assert d.proc is not None
        limits = Path(f"/proc/{d.proc.pid}/limits").read_text()
        soft = next(line.split()[3] for line in limits.splitlines() if line.startswith("Max open files"))
        assert int(soft) == expected
    finally:
        d.stop()
    assert d.proc is not None and d.proc.stderr is not None
    banner = d.proc.stderr.read().decode()
    defaults = Settings()
    cap = min(defaults.max_connections, expected // 2, expected - defaults.remote_installing_max_conn - FD_RESERVE)
    assert f"connections: at most {cap} ({defaults.max_connections_per_peer} per client address), request head " \
           f"within 10 s, keep-alive 5 s, open files {expected}" in banner


def test_an_explicit_cap_that_does_not_fit_the_open_file_limit_is_refused() -> None:
    settings = Settings(max_connections=5000, sources={"max_connections": "env PLUGDOCK_MAX_CONNECTIONS"})
    with pytest.raises(PlugdockError, match=r"PLUGDOCK_MAX_CONNECTIONS = 5000 does not fit in the open-file limit "
                                            r"of 1024 \(at most 512"):
        connection_budget(settings, 1024)
    assert connection_budget(Settings(max_connections=5000), 1024) == 512  # the default is lowered instead


@pytest.mark.parametrize(("name", "value"), [("PLUGDOCK_HEADER_TIMEOUT", "0"),
                                             ("PLUGDOCK_MAX_CONNECTIONS_PER_PEER", "0")])
def test_serve_refuses_a_zero_limit_naming_it(tmp_path: Path, name: str, value: str) -> None:
    env = {**os.environ, "PLUGDOCK_HOME": str(tmp_path), "SERVER_KEY": KEY, name: value}
    proc = subprocess.run([sys.executable, "-m", "plugdock", "serve"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode != 0
    assert f"{name} must be at least 1, not 0" in proc.stderr
