"""Daemon lifecycle: upgrades with a health check, icons as assets, flooding and idle plugins, boot start,
and the whole daemon on PostgreSQL."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from daemon_harness import DaemonProcess, eventually
from plugdock.packaging.build import build_package

from conftest import make_plugin

EXAMPLES = Path(__file__).parent.parent / "examples"
pytestmark = pytest.mark.slow


def versioned(tmp: Path, version: str, body: str = 'yield self.create_text_message("v")') -> Path:
    root = make_plugin(tmp / f"up-{version}", name="up")
    manifest = root / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("version: 0.0.1\ntype", f"version: {version}\ntype"))
    (root / "tools" / "up.py").write_text(
        "import os\nfrom plugdock.sdk import Tool\n\n\nclass T(Tool):\n    def _invoke(self, tool_parameters):\n"
        f"        {body}\n")
    return root


def call(d: DaemonProcess, plugin_id: str, provider: str, tool: str, params: dict | None = None) -> list[dict]:
    return d.dispatch("tool/invoke", plugin_id, {"provider": provider, "tool": tool, "credentials": {},
                                                 "tool_parameters": params or {}})


def logs_once(d: DaemonProcess, plugin_id: str, state: str) -> dict:
    """The plugin's logs once its state is ``state``: the daemon stops an idle or silent plugin on its own
    schedule, which a loaded machine can delay."""
    def settled() -> dict | None:
        logs: dict = d.data(d.client.get("/plugin/t1/management/logs", params={"plugin_id": plugin_id}))
        return logs if logs["state"] == state else None

    return eventually(settled, f"{plugin_id} never reached the state {state!r}")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path_factory.mktemp("home"), PLUGDOCK_IDLE_STOP_AFTER="2",
                      PLUGIN_RUNTIME_MAX_BUFFER_SIZE="65536").start()
    yield d
    d.stop()


def test_upgrade_switches_after_the_new_version_answers(daemon: DaemonProcess, tmp_path: Path) -> None:
    old = daemon.install(versioned(tmp_path, "0.0.1", 'yield self.create_text_message("one")'))
    assert call(daemon, "tester/up", "up", "up")[0]["data"]["message"]["text"] == "one"
    new = daemon.upload(build_package(versioned(tmp_path, "0.0.2", 'yield self.create_text_message("two")')).data)
    task = daemon.data(daemon.client.post("/plugin/t1/management/install/upgrade", json={
        "original_plugin_unique_identifier": old, "new_plugin_unique_identifier": new, "source": "package"}))
    status = daemon.finished_task(task["task_id"])
    assert status["status"] == "success", status
    assert call(daemon, "tester/up", "up", "up")[0]["data"]["message"]["text"] == "two"
    listing = daemon.data(daemon.client.get("/plugin/t1/management/list"))
    assert [p["version"] for p in listing["list"] if p["plugin_id"] == "tester/up"] == ["0.0.2"]
    assert daemon.client.get("/plugin/t1/management/fetch/identifier",
                             params={"plugin_unique_identifier": old}).json()["data"] is False

    broken_dir = versioned(tmp_path, "0.0.3")
    (broken_dir / "tools" / "up.py").write_text("import nothing_here_at_all\n")  # fails at start
    broken = daemon.upload(build_package(broken_dir).data)
    task = daemon.data(daemon.client.post("/plugin/t1/management/install/upgrade", json={
        "original_plugin_unique_identifier": new, "new_plugin_unique_identifier": broken}))
    status = daemon.finished_task(task["task_id"])
    assert status["status"] == "failed" and "is still installed" in status["plugins"][0]["message"]
    assert call(daemon, "tester/up", "up", "up")[0]["data"]["message"]["text"] == "two"


def test_icons_are_served_as_assets(daemon: DaemonProcess) -> None:
    identifier = daemon.install(EXAMPLES / "echo_tool")
    manifest = daemon.data(daemon.client.get("/plugin/t1/management/fetch/manifest",
                                             params={"plugin_unique_identifier": identifier}))
    icon = manifest["icon"]
    assert icon.endswith(".svg") and len(icon) == 64 + 4
    assert manifest["tool"]["identity"]["icon"] == icon
    response = daemon.client.get(f"/plugin/t1/asset/{icon}")
    assert response.status_code == 200 and response.content.startswith(b"<svg")
    assert response.headers["content-type"].startswith("image/svg")
    assert daemon.client.get("/plugin/t1/asset/nope.svg").status_code == 404


def test_a_plugin_flooding_one_huge_line_is_stopped_with_the_limit_named(daemon: DaemonProcess,
                                                                         tmp_path: Path) -> None:
    root = make_plugin(tmp_path / "flood", name="flood")
    (root / "tools" / "flood.py").write_text(
        "import os, sys\nfrom plugdock.sdk import Tool\n\n\nclass T(Tool):\n    def _invoke(self, tool_parameters):\n"
        "        os.write(int(os.environ.get('FLOOD_FD', '3')), b'x' * 200000 + b'\\n')\n"
        "        yield self.create_text_message('unreached')\n")
    (root / "main.py").write_text(
        "import os\nos.environ['FLOOD_FD'] = str(os.dup(1))\n" + (root / "main.py").read_text())
    daemon.install(root)
    events = call(daemon, "tester/flood", "flood", "flood")
    assert events[-1]["code"] == -500 and "65536-byte limit" in events[-1]["message"]


def test_idle_plugins_are_stopped_and_restart_on_demand(daemon: DaemonProcess, tmp_path: Path) -> None:
    daemon.install(versioned(tmp_path, "0.0.9", 'yield self.create_text_message("idle")'))
    before = set(daemon.plugin_pids())
    assert call(daemon, "tester/up", "up", "up")[0]["data"]["message"]["text"] == "idle"
    running = set(daemon.plugin_pids())
    assert running - before or running  # started on demand
    logs = logs_once(daemon, "tester/up", "stopped")
    assert any("idle for 2 s" in line for line in logs["lines"])
    assert call(daemon, "tester/up", "up", "up")[0]["data"]["message"]["text"] == "idle"


def booted(d: DaemonProcess) -> dict | None:
    """/health/check once no plugin is starting any more."""
    health: dict = d.client.get("/health/check").json()
    return None if "starting" in health else health


def test_boot_start_and_postgresql(tmp_path: Path) -> None:
    name = f"plugdock_e2e_{uuid.uuid4().hex[:8]}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        first = DaemonProcess(tmp_path / "home", DB_URL=url).start()
        try:
            first.install(EXAMPLES / "echo_tool")
        finally:
            first.stop()
        second = DaemonProcess(tmp_path / "home", DB_URL=url, PLUGDOCK_START_PLUGINS="boot").start()
        try:
            # started at boot, in the background: health counts it as starting until it runs
            health = eventually(lambda: booted(second), "the boot start did not finish")
            assert health["pool_status"] == {"installed": 1, "running": 1}
            events = second.dispatch("tool/invoke", "plugdock/echo_tool", {
                "provider": "echo_tool", "tool": "echo_tool", "credentials": {}, "tool_parameters": {"text": "pg"}})
            assert events[0]["data"]["message"]["text"] == "pg"
            assert json.loads(second.client.get("/plugin/t1/management/list").text)["data"]["total"] == 1
        finally:
            second.stop()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_silent_plugin_is_killed_and_shutdown_stops_everything(tmp_path: Path) -> None:
    import subprocess
    import sys

    d = DaemonProcess(tmp_path / "home", PLUGDOCK_HEARTBEAT_TIMEOUT="2").start()
    try:
        root = versioned(tmp_path, "0.1.0", 'yield self.create_text_message("hi")')
        (root / "main.py").write_text((root / "main.py").read_text().replace(
            "MAX_REQUEST_TIMEOUT=120", "MAX_REQUEST_TIMEOUT=120, HEARTBEAT_INTERVAL=3600"))
        d.install(root)
        assert call(d, "tester/up", "up", "up")[0]["data"]["message"]["text"] == "hi"
        logs = logs_once(d, "tester/up", "failed")
        assert any("no output or heartbeat for 2 s" in ln for ln in logs["lines"])
        key_file = tmp_path / "server.key"
        key_file.write_text("test-server-key\n")
        key_file.chmod(0o600)
        cli = subprocess.run([sys.executable, "-m", "plugdock", "logs", "tester/up", "--daemon", d.url, "--key-file",
                              str(key_file), "--tenant", "t1"], capture_output=True, text=True, check=False)
        assert cli.returncode == 0 and "no output or heartbeat" in cli.stdout
        d.install(EXAMPLES / "echo_tool")
        call(d, "plugdock/echo_tool", "echo_tool", "echo_tool", {"text": "x"})
        children = d.plugin_pids()
        assert children
    finally:
        d.stop(signal.SIGTERM)  # graceful: stops every plugin first
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status says why it stopped
    assert d.proc is not None and d.proc.returncode in (0, -signal.SIGTERM)
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_a_fresh_home_without_the_sandbox_runs_plugins(tmp_path: Path) -> None:
    """--sandbox none (and any start where plugins get no uid of their own) makes the plugins' private folders
    under a home that lock_down_home never prepared."""
    daemon = DaemonProcess(tmp_path / "home", PLUGDOCK_SANDBOX="none").start()
    try:
        daemon.install(make_plugin(tmp_path / "demo"))
        events = daemon.dispatch("tool/invoke", "tester/demo", {"provider": "demo", "tool": "demo", "credentials": {},
                                                                "tool_parameters": {"text": "hi"}})
        assert events[0]["data"]["message"] == {"text": "hi"}, events
    finally:
        daemon.stop()


def test_restarting_with_an_edited_preinstall_folder_replaces_the_old_version(tmp_path: Path) -> None:
    plugin = make_plugin(tmp_path / "demo")
    home = tmp_path / "home"
    for version in ("0.0.1", "0.0.2"):
        manifest = (plugin / "manifest.yaml").read_text()
        (plugin / "manifest.yaml").write_text(manifest.replace("version: 0.0.1", f"version: {version}", 1))
        daemon = DaemonProcess(home).start("--preinstall", str(plugin))
        try:
            listed = daemon.data(daemon.client.get("/plugin/default/management/list", params={"page": 1,
                                                                                           "page_size": 10}))
            assert [p["version"] for p in listed["list"]] == [version]
        finally:
            daemon.stop()
    assert [p.name for p in (home / "plugins").iterdir()] == [
        p.name for p in (home / "plugins").iterdir() if "0.0.2" in p.name]
