"""One plugin's cgroups: the control files, limits, membership, kills and OOM counts (the manager
in :mod:`plugdock.daemon.plugins.cgroups` creates and sweeps them)."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from plugdock.errors import PlugdockError

CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000
MINIMUM_CPU_QUOTA_US = 1_000  # the kernel refuses smaller cfs quotas
MINIMUM_MEMORY = 1024 * 1024
# Where the daemon moves itself when cgroup v2 refuses to enable controllers in a cgroup holding processes.
DAEMON_LEAF = "_daemon"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
V1_PROBE = {"memory": "memory.limit_in_bytes", "pids": "pids.max", "cpu": "cpu.cfs_quota_us",
            "freezer": "freezer.state"}
V2_PROBE = {"memory": "memory.max", "pids": "pids.max", "cpu": "cpu.max"}
# Bounds on the kill loops (rounds, and polls of 10 ms for the group to empty in each round).
KILL_ROUNDS = 20
SETTLE_POLLS = 100
POLL_SECONDS = 0.01


class CgroupError(PlugdockError):
    code = "cgroup_error"


@dataclass(frozen=True)
class Limits:
    """What one plugin's group may use; None leaves that resource unlimited."""

    memory: int | None = None  # bytes, swap included
    pids: int | None = None  # processes and threads
    cpu: float | None = None  # cores: 1.0 = one full core, 0.5 = half of one

    def __post_init__(self) -> None:
        if self.memory is not None and (isinstance(self.memory, bool) or not isinstance(self.memory, int)
                                        or self.memory < MINIMUM_MEMORY):
            raise CgroupError(f"Limits.memory must be a whole number of bytes >= {MINIMUM_MEMORY}, "
                              f"got {self.memory!r}")
        if self.pids is not None and (isinstance(self.pids, bool) or not isinstance(self.pids, int)
                                      or self.pids < 1):
            raise CgroupError(f"Limits.pids must be a whole number >= 1, got {self.pids!r}")
        if self.cpu is not None and (isinstance(self.cpu, bool) or not isinstance(self.cpu, int | float)
                                     or not self.cpu * CPU_PERIOD_US >= MINIMUM_CPU_QUOTA_US):
            raise CgroupError(f"Limits.cpu must be a number of cores >= {MINIMUM_CPU_QUOTA_US / CPU_PERIOD_US}, "
                              f"got {self.cpu!r}")


def join(procs_files: Iterable[str]) -> None:
    """Move the calling process into every group (for ``preexec_fn``: plain syscalls, errors name the file)."""
    for path in procs_files:
        try:
            descriptor = os.open(path, os.O_WRONLY)
            try:
                os.write(descriptor, b"0")
            finally:
                os.close(descriptor)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot join the cgroup: {exc.strerror}", path) from None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise CgroupError(f"cannot read {path}: {exc.strerror}") from None


def _write(path: Path, value: str) -> None:
    """Write one value into an existing control file (never creating it: a missing file is an error)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(descriptor, value.encode())
        finally:
            os.close(descriptor)
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {path}: {exc.strerror}") from None


def _keyed(path: Path, key: str) -> int | None:
    """The number after ``key`` in a flat-keyed file such as memory.events or memory.oom_control."""
    try:
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == key:
                return int(parts[1])
    except (OSError, ValueError):
        return None
    return None


def _number(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _pids_in(directory: Path) -> set[int]:
    try:
        return {int(item) for item in (directory / "cgroup.procs").read_text().split()}
    except FileNotFoundError:
        return set()


def _membership(self_cgroup: Path) -> dict[str, str]:
    """Controller -> the cgroup path this process is in (``""`` is the unified hierarchy)."""
    found: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in self_cgroup.read_text().splitlines():
            parts = line.split(":", 2)
            if len(parts) != 3:
                continue
            if parts[1] == "":
                found[""] = parts[2]
            for controller in parts[1].split(","):
                if controller and not controller.startswith("name="):
                    found[controller] = parts[2]
    return found


def _parents(mount: Path, own: str | None) -> list[Path]:
    """Where groups may go: under the daemon's own cgroup first (nested limits hold), else the mount's root."""
    candidates = []
    if own and own.strip("/"):
        candidates.append(mount / own.strip("/"))
    candidates.append(mount)
    return candidates


@dataclass
class PluginCgroup:
    """The groups of one plugin: join them, list and kill everything in them, tell whether memory ran out."""

    name: str
    directories: tuple[Path, ...]  # every group this plugin has, one per hierarchy
    kill_method: str | None  # "cgroup.kill", "freezer", "signal" or None
    memory_dir: Path | None = None
    memory_version: int = 0
    freezer_dir: Path | None = None
    unified_dir: Path | None = None
    oom_baseline: int = field(default=0)

    @property
    def procs_files(self) -> tuple[str, ...]:
        return tuple(str(directory / "cgroup.procs") for directory in self.directories)

    def add(self, pid: int) -> None:
        """Move a running process (and its threads) into every group, from the daemon's side."""
        for path in self.procs_files:
            _write(Path(path), str(pid))

    def pids(self) -> set[int]:
        """Every live process in any of the groups (zombies have already left them)."""
        found: set[int] = set()
        for directory in self.directories:
            found |= _pids_in(directory)
        return found

    def oom_kills(self) -> int:
        """How many processes the kernel killed in this group for exceeding its memory limit, ever."""
        if self.memory_dir is None:
            return 0
        if self.memory_version == 2:
            return _keyed(self.memory_dir / "memory.events", "oom_kill") or 0
        count = _keyed(self.memory_dir / "memory.oom_control", "oom_kill")
        if count is None:  # kernels before 4.13 have no counter: a hit limit is the best evidence
            count = _number(self.memory_dir / "memory.failcnt") or 0
        return count

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process here for memory since the group was last (re)created."""
        return self.oom_kills() > self.oom_baseline

    def memory_usage(self) -> int | None:
        if self.memory_dir is None:
            return None
        return _number(self.memory_dir / ("memory.current" if self.memory_version == 2 else "memory.usage_in_bytes"))

    def memory_peak(self) -> int | None:
        if self.memory_dir is None:
            return None
        return _number(self.memory_dir / ("memory.peak" if self.memory_version == 2 else "memory.max_usage_in_bytes"))

    def kill_all(self) -> int:
        """SIGKILL every process in the group, forkers included, until none remains; returns how many were seen."""
        seen: set[int] = set()
        for _ in range(KILL_ROUNDS):
            present = self.pids()
            if not present:
                return len(seen)
            seen |= present
            # the group's own mechanism while it holds processes; plain signals for any left outside it
            if self.kill_method == "cgroup.kill" and self.unified_dir is not None and _pids_in(self.unified_dir):
                _write(self.unified_dir / "cgroup.kill", "1")
            elif self.kill_method == "freezer" and self.freezer_dir is not None and _pids_in(self.freezer_dir):
                seen |= self._kill_frozen()
            else:
                for pid in present:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            if self._settled():
                return len(seen)
        left = self.pids()
        if left:
            raise CgroupError(f"processes {sorted(left)} are still in {', '.join(map(str, self.directories))} "
                              f"after {KILL_ROUNDS} rounds of SIGKILL")
        return len(seen)

    def _kill_frozen(self) -> set[int]:
        """Freeze (no fork can race the kill), SIGKILL everything, thaw so that the kills take effect."""
        assert self.freezer_dir is not None
        state = self.freezer_dir / "freezer.state"
        _write(state, "FROZEN")
        try:
            for _ in range(SETTLE_POLLS):
                if _read(state).strip() == "FROZEN":
                    break
                time.sleep(POLL_SECONDS)
            present = _pids_in(self.freezer_dir)
            for pid in present:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        finally:
            _write(state, "THAWED")
        return present

    def _settled(self) -> bool:
        for _ in range(SETTLE_POLLS):
            if not self.pids():
                return True
            time.sleep(POLL_SECONDS)
        return False

    def remove(self) -> None:
        """Remove every group (after ``kill_all``); a group still holding processes is an error naming it."""
        for directory in self.directories:
            for attempt in range(SETTLE_POLLS):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    # an exiting task can keep a v1 group busy for a moment after it left cgroup.procs
                    if exc.errno != errno.EBUSY or attempt == SETTLE_POLLS - 1:
                        raise CgroupError(f"cannot remove {directory}: {exc.strerror} "
                                          f"(processes in it: {sorted(self.pids())})") from None
                    time.sleep(POLL_SECONDS)
