"""Per-plugin cgroups against the real kernel (v1 controllers, the unified hierarchy's cgroup.kill, the v1 freezer)
and against a fake cgroup2 tree (delegated controllers, which this kind of host cannot provide): limits the kernel
enforces (OOM kill reported, fork bomb stopped, CPU quota written), whole-group kills of processes that hop or
double-fork away, and the start-up sweep of a previous run's groups, only for its own tag."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from plugdock.daemon.plugins.cgroups import CgroupError, CgroupManager, Limits, PluginCgroup, join

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpu", "freezer")
NOBODY = 65534
# The children drop to an unprivileged uid, which cannot enter /root where a pyenv interpreter may live.
PYTHON = next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.access(p, os.X_OK)), sys.executable)
MiB = 1024 * 1024

real_kernel = pytest.mark.skipif(
    os.geteuid() != 0 or not all((CGROUP_ROOT / c / "cgroup.procs").is_file() for c in V1_CONTROLLERS),
    reason="needs root and cgroup v1 memory, pids, cpu and freezer hierarchies under /sys/fs/cgroup")
unified_kill = pytest.mark.skipif(not (CGROUP_ROOT / "unified" / "cgroup.kill").exists()
                                  and not (CGROUP_ROOT / "unified" / "cgroup.procs").is_file(),
                                  reason="needs a cgroup2 mount at /sys/fs/cgroup/unified")


def new_tag() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def v1_only_root(tmp_path: Path) -> Path:
    """The real v1 hierarchies without the unified mount, so that kills go through the freezer."""
    root = tmp_path / "cgroup"
    root.mkdir()
    for controller in V1_CONTROLLERS:
        (root / controller).symlink_to(CGROUP_ROOT / controller)
    return root


@pytest.fixture
def managers() -> Iterator[Callable[..., CgroupManager]]:
    """Makes managers (a fresh tag unless given) and removes every group they made, processes included."""
    made: list[CgroupManager] = []

    def make(tag: str | None = None, root: Path = CGROUP_ROOT) -> CgroupManager:
        manager = CgroupManager(tag or new_tag(), root=root)
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.destroy()


@pytest.fixture(params=["cgroup.kill", "freezer"])
def kill_manager(request: pytest.FixtureRequest, managers: Callable[..., CgroupManager],
                 v1_only_root: Path) -> CgroupManager:
    if request.param == "cgroup.kill":
        if not (CGROUP_ROOT / "unified" / "cgroup.procs").is_file():
            pytest.skip("no cgroup2 mount at /sys/fs/cgroup/unified")
        manager = managers()
    else:
        manager = managers(root=v1_only_root)
    assert manager.kill_method == request.param
    return manager


def start(group: PluginCgroup, code: str, uid: int | None = NOBODY,
          env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """A python child that joins the groups as root, then drops to ``uid`` (the order the sandbox must use)."""

    def setup() -> None:
        join(group.procs_files)
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)

    return subprocess.Popen([PYTHON, "-c", code], preexec_fn=setup, cwd="/", text=True, env=env or {},
                            stdout=subprocess.PIPE)


def marked(marker: str) -> set[int]:
    """Live processes whose environment carries ``marker`` (an independent check that nothing escaped)."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "environ").read_bytes() \
                    and (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                found.add(int(entry.name))
        except OSError:
            continue
    return found


# -- the real kernel --------------------------------------------------------------------------------------


@real_kernel
def test_this_host_uses_v1_controllers_under_the_daemons_own_memory_cgroup(
        managers: Callable[..., CgroupManager]) -> None:
    manager = managers()
    assert manager.available() == {"memory", "pids", "cpu"}
    assert manager.level.startswith("cgroup v1 (memory, pids, cpu")
    own_memory = next(line.split(":", 2)[2] for line in Path("/proc/self/cgroup").read_text().splitlines()
                      if "memory" in line.split(":")[1].split(","))
    memory_base = next(base for base in manager.bases() if base.is_relative_to(CGROUP_ROOT / "memory"))
    assert memory_base == CGROUP_ROOT / "memory" / own_memory.strip("/") / f"plugdock-{manager.tag}"
    if (CGROUP_ROOT / "unified" / "cgroup.kill").exists():
        assert manager.level == "cgroup v1 (memory, pids, cpu) + cgroup v2 kill"
        assert manager.kill_method == "cgroup.kill"


@real_kernel
def test_memory_limit_is_enforced_by_the_kernel_and_reported_as_oom(
        kill_manager: CgroupManager) -> None:
    hog = kill_manager.create("u1", Limits(memory=64 * MiB))
    calm = kill_manager.create("u2", Limits(memory=64 * MiB))
    code = "blocks = [b'x' * (16 * 1024 * 1024) for _ in range(64)]\nprint('survived 1 GiB')"
    proc = start(hog, code)
    output, _ = proc.communicate()
    assert proc.returncode == -9, output
    assert output == ""
    assert hog.oom_killed()
    assert not calm.oom_killed()
    assert hog.pids() == set()
    # a new start of the same plugin counts OOM kills from zero again
    assert not kill_manager.create("u1", Limits(memory=64 * MiB)).oom_killed()


@real_kernel
def test_joining_after_the_uid_switch_is_refused(managers: Callable[..., CgroupManager]) -> None:
    group = managers().create("u1", Limits())
    with pytest.raises((subprocess.SubprocessError, PermissionError)):
        subprocess.Popen([sys.executable, "-c", "pass"], user=NOBODY, preexec_fn=lambda: join(group.procs_files))
    assert group.pids() == set()


@real_kernel
def test_pids_limit_stops_a_fork_bomb(managers: Callable[..., CgroupManager]) -> None:
    group = managers().create("u1", Limits(pids=20))
    code = """import os, signal
forked = failed = 0
for _ in range(50):
    try:
        pid = os.fork()
    except OSError:
        failed += 1
        continue
    if pid == 0:
        signal.pause()
        os._exit(0)
    forked += 1
print(forked, failed, flush=True)
signal.pause()
"""
    proc = start(group, code)
    assert proc.stdout is not None
    forked, failed = map(int, proc.stdout.readline().split())
    assert forked + failed == 50
    assert forked <= 19  # the bomb itself is the twentieth
    assert failed >= 31
    assert len(group.pids()) == forked + 1
    assert group.kill_all() == forked + 1
    assert proc.wait() == -9
    assert group.pids() == set()


@real_kernel
def test_limits_are_written_and_reapplied_in_an_order_the_kernel_accepts(
        managers: Callable[..., CgroupManager]) -> None:
    manager = managers()
    group = manager.create("u1", Limits(memory=64 * MiB, pids=30, cpu=0.5))
    memory = group.memory_dir
    assert memory is not None
    cpu = next(d for d in group.directories if d.is_relative_to(CGROUP_ROOT / "cpu"))
    pids = next(d for d in group.directories if d.is_relative_to(CGROUP_ROOT / "pids"))

    def memory_limits() -> set[int]:
        files = ["memory.limit_in_bytes"]
        if (memory / "memory.memsw.limit_in_bytes").exists():
            files.append("memory.memsw.limit_in_bytes")
        return {int((memory / name).read_text()) for name in files}

    assert memory_limits() == {64 * MiB}
    assert (cpu / "cpu.cfs_period_us").read_text().strip() == "100000"
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "50000"
    assert (pids / "pids.max").read_text().strip() == "30"
    manager.create("u1", Limits(memory=512 * MiB, pids=5, cpu=2.0))  # raising memory: memsw first
    assert memory_limits() == {512 * MiB}
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "200000"
    assert (pids / "pids.max").read_text().strip() == "5"
    manager.create("u1", Limits(memory=32 * MiB))  # lowering: the limit first
    assert memory_limits() == {32 * MiB}
    manager.create("u1", Limits())
    assert len(memory_limits()) == 1 and memory_limits().pop() > 1 << 60
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "-1"
    assert (pids / "pids.max").read_text().strip() == "max"


@real_kernel
def test_kill_all_kills_a_hopper_that_forks_and_lets_its_parent_exit(kill_manager: CgroupManager) -> None:
    marker = f"PLUGDOCK_TEST_HOPPER={uuid.uuid4().hex}"
    group = kill_manager.create("u1", Limits(pids=64))
    code = """import os, time
for hop in range(20000):
    if os.fork():
        os._exit(0)
    time.sleep(0.002)
"""
    proc = start(group, code, env=dict([marker.split("=", 1)]))
    assert proc.wait() == 0  # the first hop: what the daemon started is gone, its descendant hops on
    assert group.pids()
    assert group.kill_all() >= 1
    assert group.pids() == set()
    assert marked(marker) == set()
    group.remove()
    assert not any(d.exists() for d in group.directories)


@real_kernel
def test_kill_all_kills_a_double_forked_child_with_an_empty_environment(kill_manager: CgroupManager) -> None:
    group = kill_manager.create("u1", Limits())
    code = """import os, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        print(os.getpid(), flush=True)
        os.execve("/bin/sleep", ["sleep", "600"], {})
    os._exit(0)
"""
    proc = start(group, code)
    assert proc.stdout is not None
    orphan = int(proc.stdout.readline())
    assert proc.wait() == 0
    assert orphan in group.pids()
    group.kill_all()
    assert group.pids() == set()
    stat = Path(f"/proc/{orphan}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


@real_kernel
def test_sweep_kills_and_removes_a_previous_runs_groups_of_its_own_tag_only(
        managers: Callable[..., CgroupManager]) -> None:
    tag, other_tag = new_tag(), new_tag()
    previous_run = managers(tag).create("u1", Limits(memory=64 * MiB))
    other_daemon = managers(other_tag).create("u1", Limits(memory=64 * MiB))
    sleeper = "import time; time.sleep(600)"
    ours, theirs = start(previous_run, sleeper), start(other_daemon, sleeper)
    try:
        ours_pids = previous_run.pids()
        assert ours_pids == {ours.pid}
        restarted = managers(tag)
        assert restarted.sweep() == [ours.pid]
        assert ours.wait() == -9
        assert not any(d.exists() for d in previous_run.directories)
        assert restarted.names() == set()
        assert theirs.poll() is None
        assert other_daemon.pids() == {theirs.pid}
        assert all(d.is_dir() for d in other_daemon.directories)
    finally:
        for proc in (ours, theirs):
            proc.kill()
            proc.wait()


@real_kernel
def test_create_is_idempotent_while_the_plugin_runs(managers: Callable[..., CgroupManager]) -> None:
    manager = managers()
    group = manager.create("u1", Limits(pids=10))
    proc = start(group, "import time; time.sleep(600)")
    try:
        again = manager.create("u1", Limits(pids=12))
        assert again.procs_files == group.procs_files
        assert again.pids() == {proc.pid}
    finally:
        group.kill_all()
        proc.wait()


# -- a fake cgroup2 tree with delegated controllers -------------------------------------------------------

V2_LEAF_FILES = {"cgroup.procs": "", "cgroup.kill": "", "cgroup.subtree_control": "", "cgroup.controllers": "",
                 "memory.max": "max\n", "memory.swap.max": "max\n", "pids.max": "max\n", "cpu.max": "max 100000\n",
                 "memory.current": "0\n", "memory.peak": "0\n",
                 "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"}


def kernel_dir(path: Path, files: dict[str, str]) -> Path:
    """What the kernel would show in a new cgroup directory."""
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def fake_v2(tmp_path: Path, own: str = "/", controllers: str = "cpuset cpu io memory pids",
            tag: str = "0123456789ab", leaf_files: dict[str, str] = V2_LEAF_FILES) -> tuple[CgroupManager, Path]:
    root = tmp_path / "cgroup"
    parent = root / own.strip("/")
    for directory in {root, parent}:
        kernel_dir(directory, {"cgroup.controllers": controllers + "\n", "cgroup.subtree_control": "\n",
                               "cgroup.procs": ""})
    base = kernel_dir(parent / f"plugdock-{tag}", V2_LEAF_FILES)
    kernel_dir(base / "u1", leaf_files)
    self_cgroup = tmp_path / "self_cgroup"
    self_cgroup.write_text(f"0::{own}\n")
    return CgroupManager(tag, root=root, self_cgroup=self_cgroup), parent


def test_v2_delegated_controllers_are_enabled_and_limits_written(tmp_path: Path) -> None:
    manager, parent = fake_v2(tmp_path)
    assert manager.level == "cgroup v2 (memory, pids, cpu)"
    assert manager.available() == {"memory", "pids", "cpu"}
    assert manager.kill_method == "cgroup.kill"
    base = parent / "plugdock-0123456789ab"
    assert (parent / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert (base / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    group = manager.create("u1", Limits(memory=256 * MiB, pids=64, cpu=1.5))
    leaf = base / "u1"
    assert group.procs_files == (str(leaf / "cgroup.procs"),)
    assert (leaf / "memory.max").read_text() == str(256 * MiB)
    assert (leaf / "memory.swap.max").read_text() == "0"
    assert (leaf / "pids.max").read_text() == "64"
    assert (leaf / "cpu.max").read_text() == "150000 100000"
    assert not group.oom_killed()
    (leaf / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert group.oom_killed()
    assert group.memory_usage() == 0 and group.memory_peak() == 0
    manager.create("u1", Limits())
    assert [(leaf / f).read_text() for f in ("memory.max", "memory.swap.max", "pids.max", "cpu.max")] \
        == ["max", "max", "max", "max 100000"]


def test_v2_groups_nest_under_the_daemons_own_cgroup(tmp_path: Path) -> None:
    manager, parent = fake_v2(tmp_path, own="/system.slice/plugdock.service")
    assert parent == tmp_path / "cgroup" / "system.slice" / "plugdock.service"
    assert manager.bases() == (parent / "plugdock-0123456789ab",)
    assert (parent / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"


def test_v2_without_delegated_controllers_only_kills(tmp_path: Path) -> None:
    manager, _ = fake_v2(tmp_path, controllers="")
    assert manager.available() == set()
    assert manager.level == "cgroup v2 kill only"
    group = manager.create("u1", Limits(memory=64 * MiB))
    assert group.memory_dir is None and not group.oom_killed()


def test_a_missing_controller_file_is_named(tmp_path: Path) -> None:
    files = {name: text for name, text in V2_LEAF_FILES.items() if name != "cpu.max"}
    manager, parent = fake_v2(tmp_path, leaf_files=files)
    with pytest.raises(CgroupError, match=str(parent / "plugdock-0123456789ab" / "u1" / "cpu.max")):
        manager.create("u1", Limits(cpu=1.0))


def test_no_cgroup_filesystem_means_none(tmp_path: Path) -> None:
    manager = CgroupManager("0123456789ab", root=tmp_path, self_cgroup=tmp_path / "missing")
    assert manager.level == "none"
    assert manager.available() == set() and manager.kill_method is None


@pytest.mark.parametrize(("limits", "field"), [
    ({"memory": 0}, "Limits.memory"), ({"memory": 1.5e9}, "Limits.memory"), ({"pids": 0}, "Limits.pids"),
    ({"cpu": 0.001}, "Limits.cpu"), ({"cpu": True}, "Limits.cpu")])
def test_bad_limits_name_the_field(limits: dict[str, object], field: str) -> None:
    with pytest.raises(CgroupError, match=field):
        Limits(**limits)


def test_bad_names_are_refused(tmp_path: Path) -> None:
    manager, _ = fake_v2(tmp_path)
    for name in ("../escape", "", "_daemon", "a/b"):
        with pytest.raises(CgroupError, match="plugin cgroup name"):
            manager.group(name)
    with pytest.raises(CgroupError, match="cgroup tag"):
        CgroupManager("../x", root=tmp_path)


def test_v2_daemon_moves_to_a_leaf_when_its_cgroup_refuses_controllers(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """cgroup v2 refuses subtree_control in a non-root cgroup that holds processes (EBUSY): the daemon's own."""
    import plugdock.daemon.plugins.cgroups as cgroups

    refused: list[Path] = []
    real_write = cgroups._write
    service = tmp_path / "cgroup" / "system.slice" / "plugdock.service"

    def write(path: Path, value: str) -> None:
        if path == service / "cgroup.subtree_control" and not refused:
            refused.append(path)
            raise CgroupError(f"cannot write {value!r} to {path}: Device or resource busy")
        real_write(path, value)

    monkeypatch.setattr(cgroups, "_write", write)
    kernel_dir(service / "plugdock-0123456789ab" / "_daemon", {"cgroup.procs": ""})
    manager, parent = fake_v2(tmp_path, own="/system.slice/plugdock.service")
    assert refused == [parent / "cgroup.subtree_control"]
    assert (parent / "plugdock-0123456789ab" / "_daemon" / "cgroup.procs").read_text() == str(os.getpid())
    assert manager.available() == {"memory", "pids", "cpu"}
    assert manager.names() == {"u1"}
