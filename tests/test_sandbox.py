"""Containment of plugin processes under the default ``process`` sandbox, with a real daemon run as root:
own uid, no daemon secrets, read-only code, private temp, memory limit named, escaped children killed,
leftovers of a killed daemon killed at the next start."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon_harness import DaemonProcess, eventually
from plugdock.daemon.plugins.sandbox import MARKER, Sandbox, manifest_memory

from conftest import make_plugin

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="separate plugin users need the daemon to run as root")]
DAEMON_SECRET = "daemon-only-secret-value"

PROBE = '''import json, os, resource, subprocess, sys, time
from plugdock.sdk import Tool


def attempt(action):
    try:
        action()
        return "allowed"
    except OSError as exc:
        return type(exc).__name__


class T(Tool):
    def _invoke(self, tool_parameters):
        mode = tool_parameters.get("mode")
        if mode == "hog":
            blocks = []
            while True:
                blocks.append(b"x" * (16 * 1024 * 1024))
                time.sleep(0.02)
        if mode == "escape":
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
            yield self.create_json_message({"pid": child.pid})
            return
        home = os.environ["PLUGDOCK_PROBE_HOME"]
        report = {
            "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
            "environ": sorted(os.environ),
            "no_new_privs": [ln for ln in open("/proc/self/status") if ln.startswith("NoNewPrivs")][0].split()[1],
            "open_files": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            "daemon_environ": attempt(lambda: open(f"/proc/{os.getppid()}/environ", "rb").read()),
            "database": attempt(lambda: open(os.path.join(home, "plugdock.db"), "rb").read(1)),
            "uid_table": attempt(lambda: open(os.path.join(home, "uids.json"), "rb").read(1)),
            "list_home": attempt(lambda: os.listdir(home)),
            "write_code": attempt(lambda: open("tools/new.py", "w").write("x")),
            "write_tmp": attempt(lambda: open(os.path.join(os.environ["TMPDIR"], "f"), "w").write("x")),
        }
        yield self.create_json_message(report)
'''


def probe_plugin(tmp: Path, name: str = "probe", memory: int = 268435456) -> Path:
    root = make_plugin(tmp / name, name=name)
    (root / "tools" / f"{name}.py").write_text(PROBE)
    manifest = root / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("memory: 268435456", f"memory: {memory}"))
    return root


def call(d: DaemonProcess, name: str, mode: str = "report") -> list[dict]:
    return d.dispatch("tool/invoke", f"tester/{name}", {"provider": name, "tool": name, "credentials": {},
                                                        "tool_parameters": {"mode": mode}})


def json_of(events: list[dict]) -> dict:
    messages = [e["data"]["message"]["json_object"] for e in events if e["code"] == 0
                and e["data"].get("type") == "json"]
    assert messages, events
    return messages[0]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    home = tmp_path_factory.mktemp("sandboxed") / "home"
    d = DaemonProcess(home, DB_PASSWORD=DAEMON_SECRET, OPENAI_API_KEY=DAEMON_SECRET,
                      PLUGDOCK_PASS_ENV="PLUGDOCK_PROBE_HOME", PLUGDOCK_PROBE_HOME=str(home),
                      PLUGDOCK_PLUGIN_MIN_MEMORY=str(128 * 2**20)).start()  # the hog's own limit applies
    yield d
    d.stop()


def test_a_plugin_runs_as_its_own_user_without_the_daemons_secrets(daemon: DaemonProcess, tmp_path: Path) -> None:
    daemon.install(probe_plugin(tmp_path))
    report = json_of(call(daemon, "probe"))
    assert report["uid"] >= 200000 and report["gid"] == report["uid"] and report["groups"] in ([], [report["gid"]])
    assert not {"DB_PASSWORD", "OPENAI_API_KEY", "SERVER_KEY"} & set(report["environ"])
    assert MARKER in report["environ"] and "PLUGDOCK_PROBE_HOME" in report["environ"]  # operator's pass-through
    assert report["no_new_privs"] == "1" and report["open_files"] == 1024
    # the daemon's memory, database, key and listing are closed; the code is read-only; its temp is its own
    assert report["daemon_environ"] == "PermissionError"
    assert report["database"] == "PermissionError"
    assert report["uid_table"] == "FileNotFoundError"  # uids live in the database, not in a file of the home
    assert report["list_home"] == "PermissionError"
    assert report["write_code"] == "PermissionError"
    assert report["write_tmp"] == "allowed"
    assert DAEMON_SECRET not in json.dumps(report)


def test_two_plugins_get_different_users(daemon: DaemonProcess, tmp_path: Path) -> None:
    daemon.install(probe_plugin(tmp_path, "probe"))
    daemon.install(probe_plugin(tmp_path, "other"))
    assert json_of(call(daemon, "probe"))["uid"] != json_of(call(daemon, "other"))["uid"]


def test_exceeding_the_manifest_memory_stops_the_plugin_with_the_limit_named(daemon: DaemonProcess,
                                                                              tmp_path: Path) -> None:
    daemon.install(probe_plugin(tmp_path, "hog", memory=134217728))
    events = call(daemon, "hog", "hog")
    assert events[-1]["code"] != 0, events
    message = events[-1]["message"]
    assert "limit of 128 MiB" in message and "resource.memory" in message
    # the next call starts it again and it answers
    assert json_of(call(daemon, "hog"))["write_tmp"] == "allowed"


def test_children_that_escape_the_process_group_die_with_the_plugin(daemon: DaemonProcess, tmp_path: Path) -> None:
    identifier = daemon.install(probe_plugin(tmp_path, "escaper"))
    pid = json_of(call(daemon, "escaper", "escape"))["pid"]
    assert Path(f"/proc/{pid}").exists()
    daemon.data(daemon.client.post("/plugin/t1/management/uninstall", json={
        "plugin_installation_id": installation_id(daemon, identifier)}))
    eventually(lambda: not alive(pid), f"child {pid} survived its plugin")


def installation_id(d: DaemonProcess, identifier: str) -> str:
    listing = d.data(d.client.get("/plugin/t1/management/list"))
    return str(next(p["id"] for p in listing["list"] if p["plugin_unique_identifier"] == identifier))


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def test_leftovers_of_a_killed_daemon_are_killed_at_its_next_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = DaemonProcess(home).start()
    first.install(probe_plugin(tmp_path, "escaper"))
    pid = json_of(call(first, "escaper", "escape"))["pid"]
    first.stop(signal.SIGKILL)  # the plugin dies by PDEATHSIG; its escaped child does not
    assert alive(pid)
    second = DaemonProcess(home).start()
    try:
        eventually(lambda: not alive(pid), f"the killed daemon's leftover {pid} survived the next start")
    finally:
        second.stop()


def test_a_home_plugin_users_cannot_enter_is_refused_with_the_folder_named(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    sandbox = Sandbox(closed / "home")
    with pytest.raises(Exception, match=r"cannot enter .*closed .*mode 700.*--sandbox none"):
        sandbox.lock_down_home()
    Sandbox(closed / "home", level="none").lock_down_home()  # no separate users: nothing to check


def test_manifest_memory_reading() -> None:
    assert manifest_memory({"resource": {"memory": 1 << 30}}) == 1 << 30
    assert manifest_memory({}) == 256 * 1024 * 1024
    assert manifest_memory({"resource": {"memory": "lots"}}) == 256 * 1024 * 1024
    assert manifest_memory({"resource": {"memory": 1048576}}) == 128 * 1024 * 1024  # floor: the interpreter itself
    # the daemon's floor (PLUGDOCK_PLUGIN_MIN_MEMORY, 512 MiB by default) over the template values official
    # manifests carry: lark_trigger declares 1 MiB and needs about 200 MiB to start
    assert manifest_memory({"resource": {"memory": 1048576}}, 512 * 2**20) == 512 * 2**20
    assert manifest_memory({"resource": {"memory": 268435456}}, 512 * 2**20) == 512 * 2**20
    assert manifest_memory({"resource": {"memory": 1 << 30}}, 512 * 2**20) == 1 << 30
    assert manifest_memory({}, 512 * 2**20) == 512 * 2**20


def test_a_binary_a_private_tmp_would_hide_is_not_reachable_unless_it_is_in_the_home(tmp_path: Path) -> None:
    """A plugdock installed in a venv under /tmp: its uv and interpreter exist for the daemon, not for a build or
    plugin in its own mount namespace (only the home is carried over), so they are copied or mirrored."""
    tool = tmp_path / "venv" / "bin" / "uv"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    for folder in (tmp_path / "venv" / "bin", tmp_path / "venv", tmp_path, *tmp_path.parents):
        if folder != folder.parent:
            folder.chmod(folder.stat().st_mode | 0o001)
    sandbox = Sandbox(tmp_path / "home")
    assert str(tool.resolve()).startswith("/tmp/")
    assert sandbox.reachable(str(tool)) is not sandbox.private_mounts
    inside = tmp_path / "home" / "tool"
    inside.parent.mkdir()
    inside.write_text("#!/bin/sh\n")
    inside.chmod(0o755)
    assert sandbox.reachable(str(inside))
