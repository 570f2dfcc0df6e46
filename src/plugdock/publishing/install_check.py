"""Check Plugin Install: the package installs in a throwaway daemon and its declaration loads.

The Marketplace starts the plugin once to see it serve; a plugdock daemon of its own (a temporary home, a random
key, loopback ports, unsigned packages allowed) goes further: it builds the environment from requirements.txt,
launches the plugin and keeps the declaration the plugin registers."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from plugdock.publishing.checks import CheckResult, _fail, _pass
from plugdock.publishing.source import Candidate

STEP = "Check Plugin Install"
TENANT = "publish-check"
START_BOUND = 60.0
INSTALL_BOUND = 900.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Failed(Exception):
    pass


class ThrowawayDaemon:
    """``plugdock serve`` in a child process with a home that is removed afterwards."""

    def __init__(self, home: Path, *, boot: bool = False) -> None:
        self.home = home
        self.boot = boot
        self.key = secrets.token_urlsafe(24)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / "daemon.log"

    def __enter__(self) -> ThrowawayDaemon:
        env = {**os.environ, "PLUGDOCK_HOME": str(self.home), "SERVER_KEY": self.key, "SERVER_HOST": "127.0.0.1",
               "SERVER_PORT": str(self.port), "PLUGIN_REMOTE_INSTALLING_ENABLED": "false",
               "FORCE_VERIFYING_SIGNATURE": "false", "PLUGDOCK_START_PLUGINS": "boot" if self.boot else "lazy"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "plugdock", "serve", "--sandbox", "none"], env=env,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_BOUND
        while True:
            if self.proc.poll() is not None:
                raise _Failed(f"the throwaway daemon exited at start: {self.tail()}")
            try:
                if httpx.get(f"{self.url}/health/check", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise _Failed(f"the throwaway daemon did not answer within {START_BOUND:.0f} s: {self.tail()}")
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: the plugins it launched go with it
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def tail(self, lines: int = 8) -> str:
        try:
            text = self.log.read_text("utf-8", errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.url}{path}", headers={"X-Api-Key": self.key},
                                 timeout=httpx.Timeout(INSTALL_BOUND, connect=10), **kwargs)
        try:
            body = response.json()
        except ValueError:
            raise _Failed(f"the daemon answered {path} with HTTP {response.status_code}") from None
        if not isinstance(body, dict) or body.get("code") != 0:
            message = body.get("message") if isinstance(body, dict) else response.text[:300]
            raise _Failed(f"the daemon refused the package: {message}")
        return body.get("data")


def check_plugin_install(c: Candidate) -> CheckResult:
    """Install, then start the daemon again with ``PLUGDOCK_START_PLUGINS=boot``: the plugin must come up
    (the Marketplace runs ``python -m main`` and waits for it to serve)."""
    with tempfile.TemporaryDirectory(prefix="plugdock-publish-check-") as tmp:
        try:
            with ThrowawayDaemon(Path(tmp)) as daemon:
                installed = _install(daemon, c)
            if not installed.ok:
                return installed
            with ThrowawayDaemon(Path(tmp), boot=True) as daemon:
                return _started(daemon, installed)
        except _Failed as exc:
            return _fail("plugin_install", STEP, str(exc))


def _started(daemon: ThrowawayDaemon, installed: CheckResult) -> CheckResult:
    deadline = time.monotonic() + INSTALL_BOUND
    while True:
        health = httpx.get(f"{daemon.url}/health/check", timeout=10).json()
        if "starting" not in health:
            break
        if time.monotonic() > deadline:
            return _fail("plugin_install", STEP, f"the plugin did not start within {INSTALL_BOUND:.0f} s")
        time.sleep(0.3)
    if int(health.get("pool_status", {}).get("running", 0)) < 1:
        plugin_id = installed.message.split(" ", 2)[1].split(":")[0]
        try:
            logs = daemon.call("GET", f"/plugin/{TENANT}/management/logs", params={"plugin_id": plugin_id,
                                                                                  "lines": 6})["lines"]
        except _Failed:
            logs = []
        return _fail("plugin_install", STEP, f"{plugin_id} installed but does not start: "
                     + (" | ".join(logs) or daemon.tail(4)), file="main.py")
    return _pass("plugin_install", STEP, installed.message.replace("; the declaration loads",
                                                                  ", it starts and its declaration loads"))


def _install(daemon: ThrowawayDaemon, c: Candidate) -> CheckResult:
    prefix = f"/plugin/{TENANT}/management"
    uploaded = daemon.call("POST", f"{prefix}/install/upload/package", files={"dify_pkg": (c.asset_name, c.data)})
    identifier = uploaded["unique_identifier"]
    started = daemon.call("POST", f"{prefix}/install/identifiers", json={
        "plugin_unique_identifiers": [identifier], "source": "package", "metas": [{}]})
    deadline = time.monotonic() + INSTALL_BOUND
    while True:
        task = daemon.call("GET", f"{prefix}/install/tasks/{started['task_id']}")
        if task["status"] in ("success", "failed"):
            break
        if time.monotonic() > deadline:
            return _fail("plugin_install", STEP, f"the install did not finish within {INSTALL_BOUND:.0f} s")
        time.sleep(0.5)
    if task["status"] == "failed":
        messages = "; ".join(str(p.get("message") or p.get("status")) for p in task["plugins"])
        return _fail("plugin_install", STEP, f"the install failed: {messages} (daemon: {daemon.tail(4)})")
    listed = daemon.call("GET", f"{prefix}/list", params={"page": 1, "page_size": 256})
    found = next((p for p in listed["list"] if p.get("plugin_unique_identifier") == identifier), None)
    declaration = (found or {}).get("declaration") or {}
    if not declaration:
        return _fail("plugin_install", STEP, f"{identifier} installed but the daemon holds no declaration for it")
    kinds = [k for k in ("tool", "model", "endpoint", "agent_strategy", "datasource", "trigger") if declaration.get(k)]
    return _pass("plugin_install", STEP, f"installed {identifier} in a throwaway daemon; the declaration loads "
                 f"({', '.join(kinds) or 'no providers'})")
