"""Issue 17 item 3: an edit-package-install loop leaves one plugin process, one code folder and one private
folder per live installation, by the install route and the upgrade route, with a real daemon."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon_harness import DaemonProcess, eventually
from plugdock.packaging.build import build_package

EXAMPLES = Path(__file__).parent.parent / "examples"
pytestmark = pytest.mark.slow


def edited(tmp: Path, version: str, reply: str) -> Path:
    """The echo example at ``version``, its tool answering ``reply``: what an author's edit makes."""
    root = tmp / f"echo-{version}-{reply}"
    if root.exists():
        return root
    shutil.copytree(EXAMPLES / "echo_tool", root, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = root / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("version: 0.0.1\ntype", f"version: {version}\ntype", 1))
    (root / "tools" / "echo_tool.py").write_text(
        "from plugdock.sdk import Tool\n\n\nclass Echo(Tool):\n    def _invoke(self, tool_parameters):\n"
        f"        yield self.create_text_message({reply!r})\n")
    return root


def answer(d: DaemonProcess, tenant: str = "t1") -> str:
    events = d.dispatch("tool/invoke", "plugdock/echo_tool", {"provider": "echo_tool", "tool": "echo_tool",
                                                             "credentials": {}, "tool_parameters": {"text": "x"}},
                        tenant)
    return str(events[0]["data"]["message"]["text"])


def code_folders(d: DaemonProcess) -> list[str]:
    return sorted(p.name for p in (d.home / "plugins").iterdir() if p.name.startswith("plugdock__echo_tool"))


def private_folders(d: DaemonProcess) -> list[str]:
    runtime = d.home / "runtime"
    return sorted(p.name for p in runtime.iterdir() if "echo_tool" in p.name) if runtime.is_dir() else []


def upgrade(d: DaemonProcess, original: str, plugin_dir: Path, tenant: str = "t1") -> str:
    new = d.upload(build_package(plugin_dir).data, tenant)
    started = d.data(d.client.post(f"/plugin/{tenant}/management/install/upgrade", json={
        "original_plugin_unique_identifier": original, "new_plugin_unique_identifier": new, "source": "package"}))
    task = d.finished_task(started["task_id"], tenant)
    assert task["status"] == "success", task["plugins"][0]["message"]
    return new


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(tmp_path / "home").start()
    yield d
    d.stop()


def settles_at(d: DaemonProcess, processes: int, folders: int) -> None:
    """The count the daemon must reach at once after an install (bounded only against a hang)."""
    eventually(lambda: len(d.plugin_pids()) == processes, f"expected {processes} plugin process(es), "
               f"found {d.plugin_pids()}", bound=30)
    assert len(code_folders(d)) == folders, code_folders(d)
    assert len(private_folders(d)) <= folders, private_folders(d)


def test_install_route_loop_keeps_one_of_each(daemon: DaemonProcess, tmp_path: Path) -> None:
    # same version edited twice, then a bumped version, each installed over the last by the install route
    for step, (version, reply) in enumerate([("0.0.1", "one"), ("0.0.1", "two"), ("0.0.2", "three")]):
        daemon.install(edited(tmp_path, version, reply))
        assert answer(daemon) == reply, step
        settles_at(daemon, processes=1, folders=1)
    listing = daemon.data(daemon.client.get("/plugin/t1/management/list"))
    assert [p["version"] for p in listing["list"] if p["plugin_id"] == "plugdock/echo_tool"] == ["0.0.2"]


def test_upgrade_route_loop_keeps_one_of_each(daemon: DaemonProcess, tmp_path: Path) -> None:
    current = daemon.install(edited(tmp_path, "0.0.1", "one"))
    assert answer(daemon) == "one"
    for version, reply in [("0.0.1", "two"), ("0.0.2", "three")]:
        current = upgrade(daemon, current, edited(tmp_path, version, reply))
        assert answer(daemon) == reply
        settles_at(daemon, processes=1, folders=1)


def test_a_version_another_tenant_uses_stays_until_it_moves_too(daemon: DaemonProcess, tmp_path: Path) -> None:
    first = edited(tmp_path, "0.0.1", "one")
    daemon.install(first, tenant="t1")
    daemon.install(first, tenant="t2")
    daemon.install(edited(tmp_path, "0.0.2", "two"), tenant="t1")
    assert (answer(daemon, "t1"), answer(daemon, "t2")) == ("two", "one")
    settles_at(daemon, processes=2, folders=2)  # two live installations, two versions
    daemon.install(edited(tmp_path, "0.0.2", "two"), tenant="t2")
    assert answer(daemon, "t2") == "two"
    settles_at(daemon, processes=1, folders=1)  # both on one version now


def test_a_failed_upgrade_leaves_nothing_of_the_new_version(daemon: DaemonProcess, tmp_path: Path) -> None:
    current = daemon.install(edited(tmp_path, "0.0.1", "one"))
    assert answer(daemon) == "one"
    broken = edited(tmp_path, "0.0.2", "two")
    (broken / "tools" / "echo_tool.py").write_text("import nothing_here_at_all\n")  # fails at start
    new = daemon.upload(build_package(broken).data)
    started = daemon.data(daemon.client.post("/plugin/t1/management/install/upgrade", json={
        "original_plugin_unique_identifier": current, "new_plugin_unique_identifier": new}))
    task = daemon.finished_task(started["task_id"])
    assert task["status"] == "failed" and "is still installed" in task["plugins"][0]["message"]
    assert answer(daemon) == "one"
    settles_at(daemon, processes=1, folders=1)
