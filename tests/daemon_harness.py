"""A real ``plugdock serve`` on a free loopback port with its own home, and helpers to drive its API."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from plugdock.packaging.build import build_package

KEY = "test-server-key"
T = TypeVar("T")


def eventually(condition: Callable[[], T], what: str, bound: float = 120, every: float = 0.2) -> T:
    """Poll until ``condition()`` gives something true and return it; fail naming ``what`` if it never does.

    The bound only keeps a broken build from hanging; it is generous, and no test asserts how long the
    outcome took."""
    deadline = time.monotonic() + bound
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} (polled for {bound:.0f} s)")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def enterable(home: Path) -> None:
    """Test homes live under pytest's private temp folders (mode 0700). As root, the default sandbox runs
    each plugin as its own user, which must be able to enter the home: allow entering (not listing) the
    folders above it, which belong to this test run alone."""
    if os.geteuid() != 0:
        return
    home.mkdir(parents=True, exist_ok=True)
    for folder in home.resolve().parents:
        if folder == Path(tempfile.gettempdir()) or folder == folder.parent:
            break
        folder.chmod(folder.stat().st_mode | stat.S_IXOTH)


class DaemonProcess:
    def __init__(self, home: Path, python: str = sys.executable, **env: str) -> None:
        enterable(home)
        self.home = home
        self.python = python  # the interpreter plugdock is installed in (a wheel-installed one in some tests)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PLUGDOCK_HOME": str(home), "SERVER_KEY": KEY, "SERVER_PORT": str(self.port),
                    "FORCE_VERIFYING_SIGNATURE": "false", "PLUGIN_REMOTE_INSTALLING_PORT": "0", **env}
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=self.url, headers={"X-Api-Key": KEY}, timeout=300)

    def start(self, *args: str, timeout: float = 120) -> DaemonProcess:
        """Start and wait until it answers; the bound only catches a daemon that never comes up (a loaded
        2-core machine can take tens of seconds to start one)."""
        self.proc = subprocess.Popen([self.python, "-m", "plugdock", "serve", *args], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/health/check", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                if self.proc.poll() is None:  # still starting: stop it, or reading its stderr would wait forever
                    self.proc.kill()
                    self.proc.wait()
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""  # type: ignore[union-attr]
                raise RuntimeError(f"daemon did not start: {err[-2000:]}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    # -- API helpers --------------------------------------------------------------------------------------
    def data(self, response: httpx.Response) -> Any:
        body = response.json()
        assert body["code"] == 0, body
        return body["data"]

    def upload(self, package: bytes, tenant: str = "t1") -> str:
        response = self.client.post(f"/plugin/{tenant}/management/install/upload/package",
                                    files={"dify_pkg": ("p.difypkg", package)})
        return str(self.data(response)["unique_identifier"])

    def install(self, plugin_dir: Path, tenant: str = "t1", timeout: float = 300) -> str:
        identifier = self.upload(build_package(plugin_dir).data, tenant)
        started = self.data(self.client.post(f"/plugin/{tenant}/management/install/identifiers", json={
            "plugin_unique_identifiers": [identifier], "source": "package", "metas": [{}]}))
        if started["all_installed"]:
            return identifier
        task = self.finished_task(started["task_id"], tenant, timeout)
        assert task["status"] == "success", task["plugins"][0]["message"]
        return identifier

    def finished_task(self, task_id: str, tenant: str = "t1", timeout: float = 300) -> dict[str, Any]:
        """An install task once it has succeeded or failed."""
        def done() -> dict[str, Any] | None:
            task: dict[str, Any] = self.data(self.client.get(f"/plugin/{tenant}/management/install/tasks/{task_id}"))
            return task if task["status"] in ("success", "failed") else None

        return eventually(done, "install did not finish", timeout)

    def dispatch(self, route: str, plugin_id: str, data: dict[str, Any], tenant: str = "t1") -> list[dict[str, Any]]:
        with self.client.stream("POST", f"/plugin/{tenant}/dispatch/{route}", headers={"X-Plugin-ID": plugin_id},
                                json={"user_id": "u1", "data": data}) as response:
            assert response.headers["content-type"].startswith("text/event-stream"), response.read()
            return [json.loads(line.removeprefix("data: ")) for line in response.iter_lines() if line.strip()]

    def wait_listed(self, plugin_id: str, present: bool = True, tenant: str = "t1") -> dict[str, Any] | None:
        """The plugin's row in ``management/list`` once it is there (or None once it is gone, with ``present``
        false): a remote-debugging plugin registers and leaves asynchronously."""
        def settled() -> tuple[dict[str, Any] | None] | None:
            rows = self.data(self.client.get(f"/plugin/{tenant}/management/list"))["list"]
            found = next((row for row in rows if row["plugin_id"] == plugin_id), None)
            return (found,) if (found is not None) == present else None

        return eventually(settled, f"{plugin_id} {'never appeared' if present else 'never left'}")[0]

    def plugin_pids(self) -> list[int]:
        """PIDs of plugin processes the daemon started (its direct children)."""
        assert self.proc is not None
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False)
        return [int(p) for p in out.stdout.split()]
