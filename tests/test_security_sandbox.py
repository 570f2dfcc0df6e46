"""The hostile review's sandbox attacks, performed by real plugins against a real daemon run as root, each shown
to fail: the ``$HOME/tmp`` symlink that handed the daemon's home to a plugin, a planted uid table, limits the
sampler missed (children, processes, CPU, disk), processes that escaped cleanup, and code readable across
plugins. (Dependency builds, the network, the relay and the API have their own test files.)"""

from __future__ import annotations

import json
import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon_harness import DaemonProcess, eventually
from plugdock.daemon.plugins.sandbox import private_dir, processes_of
from plugdock.daemon.state.plugin_users import PluginUsers, UidOutOfRange

from conftest import make_plugin

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="separate plugin users need the daemon to run as root")]
TMP_SIZE = 64 * 1024 * 1024

ATTACKER = '''import json, os, resource, subprocess, sys, time
from plugdock.sdk import Tool


def attempt(action):
    try:
        action()
        return "allowed"
    except OSError as exc:
        return type(exc).__name__


def fill(path, limit):
    written = 0
    try:
        with open(path, "wb") as handle:
            while written < limit:
                handle.write(b"x" * (1 << 20))
                handle.flush()
                written += 1 << 20
    except OSError as exc:
        return {"written": written, "error": exc.errno}
    return {"written": written, "error": None}


HOG = "import time; b = bytearray(%d); [b.__setitem__(i, 1) for i in range(0, len(b), 4096)]; time.sleep(3)"
GHOST = ("import os, sys, time\\nif os.fork(): sys.exit(0)\\nos.setsid()\\nif os.fork(): sys.exit(0)\\n"
         "print(os.getpid(), flush=True)\\nos.close(1)\\nos.close(2)\\ntime.sleep(600)")
HOPPER = ("import os, sys, time\\nprint(os.getpid(), flush=True)\\nos.close(1)\\nos.close(2)\\nwhile True:\\n"
          "    if os.fork(): os._exit(0)\\n    time.sleep(0.002)")


class T(Tool):
    def _invoke(self, tool_parameters):
        mode = tool_parameters.get("mode")
        home = os.environ["PLUGDOCK_PROBE_HOME"]
        if mode == "symlink":
            # the review's first step: replace the private temp folder with a link to the daemon's home, crash
            results = {}
            for target in (os.environ["TMPDIR"], os.environ["HOME"]):
                aside = target.rstrip("/") + ".aside"
                results[target] = [attempt(lambda t=target, a=aside: os.rename(t, a)),
                                   attempt(lambda t=target: os.symlink(home, t))]
            runtime = os.path.join(home, "runtime")
            results["runtime"] = attempt(lambda: os.symlink(home, os.path.join(runtime, "planted")))
            sys.stdout.flush()
            os._exit(3)
        if mode == "fill":
            yield self.create_json_message({name: fill(os.path.join(name, "fill.bin"), 4 * %(tmp)d)
                                            for name in ("/tmp", "/dev/shm")})
            for name in ("/tmp", "/dev/shm"):
                os.unlink(os.path.join(name, "fill.bin"))
            return
        if mode == "children":
            kids = [subprocess.Popen([sys.executable, "-c", HOG % (100 * 2**20)]) for _ in range(4)]
            yield self.create_json_message({"codes": [kid.wait() for kid in kids]})
            return
        if mode == "forkbomb":
            started, refused = [], 0
            for _ in range(80):
                try:
                    started.append(subprocess.Popen(["sleep", "30"]))
                except OSError:
                    refused += 1
            for proc in started:
                proc.kill()
                proc.wait()
            yield self.create_json_message({"started": len(started), "refused": refused})
            return
        if mode in ("ghost", "hopper"):
            code = GHOST if mode == "ghost" else HOPPER
            bare = {"LD_LIBRARY_PATH": os.environ.get("LD_LIBRARY_PATH", "")}  # no marker: only what python needs
            out = subprocess.run([sys.executable, "-c", code], env=bare, capture_output=True, text=True, timeout=30)
            yield self.create_json_message({"pid": int(out.stdout.split()[0])})
            return
        shm = attempt(lambda: open("/dev/shm/plugdock-probe", "w").write("x"))
        report = {
            "uid": os.getuid(), "home": os.environ["HOME"], "tmpdir": os.environ["TMPDIR"],
            "pid": os.getpid(),
            "home_mode": oct(os.stat(home).st_mode & 0o7777), "home_owner": os.stat(home).st_uid,
            "database": attempt(lambda: open(os.path.join(home, "plugdock.db"), "rb").read(1)),
            "secret_key": attempt(lambda: open(os.path.join(home, "secret.key"), "rb").read(1)),
            "shm_in_tmp": shm == "allowed" and os.path.exists("/tmp/plugdock-probe"),
            "run": sorted(os.listdir("/run")),
            "packages": attempt(lambda: os.listdir(os.path.join(home, "packages"))),
            "assets": attempt(lambda: os.listdir(os.path.join(home, "assets"))),
        }
        other = tool_parameters.get("other")
        if other:
            report["other_code"] = attempt(lambda: os.listdir(other))
        yield self.create_json_message(report)
'''.replace("%(tmp)d", str(TMP_SIZE))


def attacker(tmp: Path, name: str, memory: int = 268435456) -> Path:
    root = make_plugin(tmp / name, name=name)
    (root / "tools" / f"{name}.py").write_text(ATTACKER)
    manifest = root / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("memory: 268435456", f"memory: {memory}"))
    return root


def call(d: DaemonProcess, name: str, mode: str = "report", **extra: str) -> list[dict]:
    return d.dispatch("tool/invoke", f"tester/{name}", {"provider": name, "tool": name, "credentials": {},
                                                        "tool_parameters": {"mode": mode, **extra}})


def json_of(events: list[dict]) -> dict:
    messages = [e["data"]["message"]["json_object"] for e in events if e["code"] == 0
                and e["data"].get("type") == "json"]
    assert messages, events
    return messages[0]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def uid_of(d: DaemonProcess, identifier: str) -> int:
    import sqlite3

    with sqlite3.connect(d.home / "plugdock.db") as db:
        return int(db.execute("select uid from plugin_users where unique_identifier = ?", (identifier,)).fetchone()[0])


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    home = tmp_path_factory.mktemp("attacked") / "home"
    d = DaemonProcess(home, PLUGDOCK_PASS_ENV="PLUGDOCK_PROBE_HOME", PLUGDOCK_PROBE_HOME=str(home),
                      PLUGDOCK_PLUGIN_TMP_SIZE=str(TMP_SIZE), PLUGDOCK_PLUGIN_MAX_PROCESSES="40",
                      PLUGDOCK_PLUGIN_CPU="0.5",
                      PLUGDOCK_PLUGIN_MIN_MEMORY=str(128 * 2**20)).start()  # the attackers' own limits apply
    yield d
    d.stop()


# -- 1: the symlink that made a plugin root ---------------------------------------------------------------
def test_a_plugin_that_links_its_temp_folder_to_the_daemons_home_gains_nothing(daemon: DaemonProcess,
                                                                               tmp_path: Path) -> None:
    identifier = daemon.install(attacker(tmp_path, "linker"))
    before = json_of(call(daemon, "linker"))
    assert before["tmpdir"] == "/tmp" and before["home"] == "/tmp/home"  # in its own tmpfs
    for _ in range(2):  # crash twice, as the review did, with the link planted each time
        assert call(daemon, "linker", "symlink")[-1]["code"] != 0
    after = json_of(call(daemon, "linker"))
    home = daemon.home.stat()
    assert home.st_uid == 0 and stat.S_IMODE(home.st_mode) == 0o711
    assert after["uid"] == before["uid"] == uid_of(daemon, identifier) != 0
    assert after["database"] == after["secret_key"] == "PermissionError"
    assert not any(p.is_symlink() for p in (daemon.home / "runtime").iterdir())


def test_private_dir_never_follows_a_link_in_its_place(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o700)
    parent = tmp_path / "private"
    parent.mkdir()
    (parent / "tmp").symlink_to(victim)
    private_dir(parent / "tmp", 200777, 200777)
    assert victim.stat().st_uid == 0 and stat.S_IMODE(victim.stat().st_mode) == 0o700
    made = (parent / "tmp").lstat()
    assert stat.S_ISDIR(made.st_mode) and made.st_uid == 200777
    (parent / "tmp").rmdir()
    (parent / "tmp").write_text("a file")
    private_dir(parent / "tmp", 200777, 200777)
    assert (parent / "tmp").is_dir()


def test_a_planted_uid_table_cannot_map_a_plugin_to_root(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "uids.json").write_text(json.dumps({"tester/planted:0.0.1@" + "0" * 64: 0}))
    d = DaemonProcess(home, PLUGDOCK_PASS_ENV="PLUGDOCK_PROBE_HOME", PLUGDOCK_PROBE_HOME=str(home)).start()
    try:
        d.install(attacker(tmp_path, "planted"))
        assert json_of(call(d, "planted"))["uid"] > 200000
        assert not (home / "uids.json").exists()
    finally:
        d.stop()


def test_uids_outside_the_plugin_range_are_refused_for_launching_and_killing(tmp_path: Path) -> None:
    from plugdock.daemon.state.db import Database

    users = PluginUsers(Database(f"sqlite:///{tmp_path / 'db.sqlite'}"), 200000, "0" * 12)
    for uid in (0, 1000, 199999, 200000 + (1 << 22)):
        with pytest.raises(UidOutOfRange, match="outside the plugin range"):
            users.check(uid, "kill processes")
    assert users.check(users.uid_for("a/b:0.0.1@x"), "launch") > 200000
    with pytest.raises(UidOutOfRange, match="PLUGDOCK_SANDBOX_UID_BASE"):
        PluginUsers(Database(f"sqlite:///{tmp_path / 'db2.sqlite'}"), 0, "0" * 12)


# -- 8: limits held by the kernel -------------------------------------------------------------------------
def test_children_cannot_exceed_the_plugins_memory_limit_together(daemon: DaemonProcess, tmp_path: Path) -> None:
    daemon.install(attacker(tmp_path, "brood", memory=256 * 2**20))
    codes = json_of(call(daemon, "brood", "children"))["codes"]
    # four children of 100 MiB under one 256 MiB limit: the kernel kills some of them (the sampler saw none)
    assert any(code == -signal.SIGKILL for code in codes), codes


def test_a_fork_bomb_stops_at_the_process_limit(daemon: DaemonProcess, tmp_path: Path) -> None:
    daemon.install(attacker(tmp_path, "bomber"))
    result = json_of(call(daemon, "bomber", "forkbomb"))
    assert result["refused"] > 0 and result["started"] < 40, result
    assert json_of(call(daemon, "bomber"))["uid"] > 200000  # and it still answers


def test_cpu_and_memory_limits_are_in_the_plugins_cgroups(daemon: DaemonProcess, tmp_path: Path) -> None:
    daemon.install(attacker(tmp_path, "limited", memory=200 * 2**20))
    pid = json_of(call(daemon, "limited"))["pid"]
    groups = dict(line.split(":", 2)[1:] for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines())
    memory = Path("/sys/fs/cgroup/memory") / groups["memory"].lstrip("/")
    cpu = Path("/sys/fs/cgroup/cpu") / groups["cpu"].lstrip("/")
    pids = Path("/sys/fs/cgroup/pids") / groups["pids"].lstrip("/")
    assert int((memory / "memory.limit_in_bytes").read_text()) == 200 * 2**20
    period = int((cpu / "cpu.cfs_period_us").read_text())
    assert int((cpu / "cpu.cfs_quota_us").read_text()) == period // 2
    assert (pids / "pids.max").read_text().strip() == "40"


def test_temp_folders_are_private_and_bounded(daemon: DaemonProcess, tmp_path: Path) -> None:
    daemon.install(attacker(tmp_path, "filler"))
    report = json_of(call(daemon, "filler"))
    assert report["shm_in_tmp"] and not Path("/tmp/plugdock-probe").exists()  # /dev/shm is its own /tmp
    assert "postgresql" not in report["run"] and "mysqld" not in report["run"]  # no database sockets
    filled = json_of(call(daemon, "filler", "fill"))
    assert filled["/tmp"]["error"] == 28 and filled["/tmp"]["written"] <= TMP_SIZE  # ENOSPC at the size
    assert filled["/dev/shm"]["error"] == 28
    assert not list(daemon.home.rglob("fill.bin"))  # nothing reached the daemon's disk


# -- 11: processes that escaped cleanup -----------------------------------------------------------------
def test_a_hopper_dies_with_its_plugins_uninstall(daemon: DaemonProcess, tmp_path: Path) -> None:
    identifier = daemon.install(attacker(tmp_path, "hopper"))
    uid = uid_of(daemon, identifier)
    json_of(call(daemon, "hopper", "hopper"))
    assert processes_of(uid)
    listing = daemon.data(daemon.client.get("/plugin/t1/management/list"))
    installation = next(p["id"] for p in listing["list"] if p["plugin_unique_identifier"] == identifier)
    daemon.data(daemon.client.post("/plugin/t1/management/uninstall", json={"plugin_installation_id": installation}))
    eventually(lambda: not processes_of(uid), f"processes of uid {uid} outlived the uninstall", 30, 0.1)


def test_an_unmarked_double_forked_child_dies_at_the_next_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = DaemonProcess(home, PLUGDOCK_PASS_ENV="PLUGDOCK_PROBE_HOME", PLUGDOCK_PROBE_HOME=str(home)).start()
    first.install(attacker(tmp_path, "ghost"))
    pid = json_of(call(first, "ghost", "ghost"))["pid"]
    assert b"PLUGDOCK_INSTANCE" not in Path(f"/proc/{pid}/environ").read_bytes()  # no marker to find it by
    first.stop(signal.SIGKILL)
    second = DaemonProcess(home).start()
    try:
        eventually(lambda: not alive(pid), f"ghost {pid} survived the daemon's restart", 30, 0.1)
    finally:
        second.stop()


# -- 12: code and packages of other plugins ---------------------------------------------------------------
def test_packages_assets_and_other_plugins_code_are_closed_from_the_first_start(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    d = DaemonProcess(home, PLUGDOCK_PASS_ENV="PLUGDOCK_PROBE_HOME", PLUGDOCK_PROBE_HOME=str(home)).start()
    try:
        d.install(attacker(tmp_path, "first"))
        other = d.install(attacker(tmp_path, "second"))
        folder = next(p for p in (home / "plugins").iterdir() if p.name.startswith("tester__second"))
        assert other
        report = json_of(call(d, "first", other=str(folder)))
        assert report["packages"] == report["assets"] == "PermissionError"
        assert report["other_code"] == "PermissionError"
        for name in ("packages", "assets"):
            assert stat.S_IMODE((home / name).stat().st_mode) == 0o700
    finally:
        d.stop()


def test_a_failed_install_leaves_no_folder(tmp_path: Path, daemon: DaemonProcess) -> None:
    root = attacker(tmp_path, "broken")
    (root / "requirements.txt").write_text("plugdock-no-such-package-anywhere==99.0\n")
    with pytest.raises(AssertionError):
        daemon.install(root, timeout=120)
    assert not [p for p in (daemon.home / "plugins").iterdir() if p.name.startswith("tester__broken")]
