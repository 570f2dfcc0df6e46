"""Kernel-enforced limits and whole-group killing for plugin processes, through cgroups.

Each plugin gets one group per hierarchy, ``<mount>/<daemon's own cgroup>/plugdock-<tag>/<name>``, so limits
set above the daemon (a systemd slice, a container) still hold for its plugins. Per controller (memory, pids,
cpu) the manager uses cgroup v2 when the controller is delegated to the daemon's cgroup (listed in its
``cgroup.controllers``), else the v1 hierarchy of that controller, else nothing (the caller falls back to
sampling). A cgroup2 mount without controllers is still joined: its ``cgroup.kill`` (Linux >= 5.14) kills a
group atomically, even a process that forks as fast as it can; without it, the v1 freezer stops the group so
that it can be killed without racing its forks.

A child joins its groups between fork and exec by writing into ``PluginCgroup.procs_files`` (see ``join``).
That write needs root (v1 files are root's; v2 needs write access to the common ancestor), so it must
happen before the child drops its uid: ``subprocess``'s ``user=`` switches before ``preexec_fn`` runs.
"""

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


class CgroupManager:
    """Finds which cgroup hierarchies this daemon may use and makes one group per plugin in each."""

    def __init__(self, tag: str, root: Path = Path("/sys/fs/cgroup"),
                 self_cgroup: Path = Path("/proc/self/cgroup")) -> None:
        if not NAME_PATTERN.fullmatch(tag):
            raise CgroupError(f"the cgroup tag must match {NAME_PATTERN.pattern}, got {tag!r}")
        self.tag = tag
        self.root = root
        self.problems: list[str] = []  # why a hierarchy that exists could not be used (for the start report)
        self._v2_base: Path | None = None
        self._v2_controllers: tuple[str, ...] = ()
        self._v1_bases: dict[str, Path] = {}
        membership = _membership(self_cgroup)
        unified = self._unified_mount()
        if unified is not None:
            self._setup_v2(unified, membership.get(""))
        for controller in CONTROLLERS:
            if controller not in self._v2_controllers:
                self._setup_v1(controller, membership.get(controller))
        self._kill_method: str | None = None
        if self._v2_base is not None and (self._v2_base / "cgroup.kill").exists():
            self._kill_method = "cgroup.kill"
        elif self._setup_v1("freezer", membership.get("freezer")):
            self._kill_method = "freezer"
        elif self._v1_bases or self._v2_base is not None:
            self._kill_method = "signal"

    # -- detection -----------------------------------------------------------------------------------

    def _unified_mount(self) -> Path | None:
        for candidate in (self.root, self.root / "unified"):
            if (candidate / "cgroup.controllers").is_file():
                return candidate
        return None

    def _setup_v2(self, mount: Path, own: str | None) -> None:
        for parent in _parents(mount, own):
            if not parent.is_dir():
                continue
            base = parent / f"plugdock-{self.tag}"
            try:
                base.mkdir(exist_ok=True)
            except OSError as exc:
                self.problems.append(f"cannot create {base}: {exc.strerror}")
                continue
            self._v2_base = base
            delegated = set((_read(parent / "cgroup.controllers")).split()) & set(CONTROLLERS)
            if delegated:
                enabled = self._enable(parent, base, delegated)
                self._v2_controllers = tuple(c for c in CONTROLLERS
                                             if c in enabled and (base / V2_PROBE[c]).exists())
            return

    def _enable(self, parent: Path, base: Path, wanted: set[str]) -> set[str]:
        """Enable controllers for the tag's groups; a parent with processes (the daemon) has them moved out."""
        request = " ".join(f"+{c}" for c in CONTROLLERS if c in wanted)
        try:
            _write(parent / "cgroup.subtree_control", request)
        except CgroupError as first:
            if parent == self._unified_mount():
                self.problems.append(first.message)
                return set()
            # cgroup v2 lets no non-root cgroup hold processes and enable controllers at once
            leaf = base / DAEMON_LEAF
            try:
                leaf.mkdir(exist_ok=True)
                _write(leaf / "cgroup.procs", str(os.getpid()))
                _write(parent / "cgroup.subtree_control", request)
            except (OSError, CgroupError) as exc:
                reason = exc.message if isinstance(exc, CgroupError) else str(exc)
                self.problems.append(f"{first.message}; moving the daemon to {leaf} did not help: {reason}")
                return set()
        try:
            _write(base / "cgroup.subtree_control", request)
        except CgroupError as exc:
            self.problems.append(exc.message)
            return set()
        return {token.lstrip("+") for token in _read(base / "cgroup.subtree_control").split()}

    def _setup_v1(self, controller: str, own: str | None) -> bool:
        mount = self.root / controller
        if not (mount / "cgroup.procs").is_file() or (mount / "cgroup.controllers").exists():
            return False
        for parent in _parents(mount, own):
            if not parent.is_dir():
                continue
            base = parent / f"plugdock-{self.tag}"
            try:
                base.mkdir(exist_ok=True)
            except OSError as exc:
                self.problems.append(f"cannot create {base}: {exc.strerror}")
                continue
            if (base / V1_PROBE[controller]).exists() and os.access(base / "cgroup.procs", os.W_OK):
                self._v1_bases[controller] = base
                return True
            self.problems.append(f"{base / V1_PROBE[controller]} is missing or {base} is not writable")
        return False

    # -- what was found ------------------------------------------------------------------------------

    @property
    def kill_method(self) -> str | None:
        return self._kill_method

    def available(self) -> set[str]:
        """The controllers the kernel enforces per plugin (a subset of memory, pids, cpu)."""
        return set(self._v2_controllers) | (set(self._v1_bases) & set(CONTROLLERS))

    @property
    def level(self) -> str:
        """One line for the start report, e.g. ``cgroup v1 (memory, pids, cpu) + cgroup v2 kill``."""
        v1 = [c for c in (*CONTROLLERS, "freezer") if c in self._v1_bases]
        parts = []
        if self._v2_controllers:
            parts.append(f"v2 ({', '.join(self._v2_controllers)})")
        if v1:
            parts.append(f"v1 ({', '.join(v1)})")
        text = f"cgroup {', '.join(parts)}" if parts else ""
        if self._kill_method == "cgroup.kill" and not self._v2_controllers:
            return f"{text} + cgroup v2 kill" if text else "cgroup v2 kill only"
        return text or "none"

    def bases(self) -> tuple[Path, ...]:
        """The tag's directory in every hierarchy in use (``.../plugdock-<tag>``)."""
        found = [*self._v1_bases.values()]
        if self._v2_base is not None:
            found.append(self._v2_base)
        return tuple(found)

    # -- groups --------------------------------------------------------------------------------------

    def group(self, name: str) -> PluginCgroup:
        """The groups named ``name`` (existing or not), without touching them."""
        if not NAME_PATTERN.fullmatch(name) or name == DAEMON_LEAF:
            raise CgroupError(f"a plugin cgroup name must match {NAME_PATTERN.pattern} "
                              f"(and not be {DAEMON_LEAF}), got {name!r}")
        directories = [base / name for base in self._v1_bases.values()]
        unified_dir = None
        if self._v2_base is not None:
            unified_dir = self._v2_base / name
            directories.append(unified_dir)
        memory_dir, version = None, 0
        if "memory" in self._v2_controllers and unified_dir is not None:
            memory_dir, version = unified_dir, 2
        elif "memory" in self._v1_bases:
            memory_dir, version = self._v1_bases["memory"] / name, 1
        freezer = self._v1_bases.get("freezer")
        return PluginCgroup(name=name, directories=tuple(directories), kill_method=self._kill_method,
                            memory_dir=memory_dir, memory_version=version,
                            freezer_dir=freezer / name if freezer is not None else None, unified_dir=unified_dir)

    def create(self, name: str, limits: Limits) -> PluginCgroup:
        """Make (or reuse) the plugin's groups and (re)apply its limits; the OOM count starts from here."""
        group = self.group(name)
        for directory in group.directories:
            try:
                directory.mkdir(exist_ok=True)
            except OSError as exc:
                raise CgroupError(f"cannot create {directory}: {exc.strerror}") from None
        if group.unified_dir is not None:
            self._apply_v2(group.unified_dir, limits)
        for controller, base in self._v1_bases.items():
            self._apply_v1(controller, base / name, limits)
        group.oom_baseline = group.oom_kills()
        return group

    def _apply_v2(self, directory: Path, limits: Limits) -> None:
        if "memory" in self._v2_controllers:
            _write(directory / "memory.max", "max" if limits.memory is None else str(limits.memory))
            if (directory / "memory.swap.max").exists():
                _write(directory / "memory.swap.max", "max" if limits.memory is None else "0")
        if "pids" in self._v2_controllers:
            _write(directory / "pids.max", "max" if limits.pids is None else str(limits.pids))
        if "cpu" in self._v2_controllers:
            quota = "max" if limits.cpu is None else str(round(limits.cpu * CPU_PERIOD_US))
            _write(directory / "cpu.max", f"{quota} {CPU_PERIOD_US}")

    @staticmethod
    def _apply_v1(controller: str, directory: Path, limits: Limits) -> None:
        if controller == "memory":
            limit, memsw = directory / "memory.limit_in_bytes", directory / "memory.memsw.limit_in_bytes"
            value = "-1" if limits.memory is None else str(limits.memory)
            current = _number(limit)
            files = [limit]
            if memsw.exists():
                # the kernel keeps limit <= memsw at every step: raise memsw first, lower it last
                raising = limits.memory is None or (current is not None and limits.memory > current)
                files = [memsw, limit] if raising else [limit, memsw]
            for path in files:
                _write(path, value)
        elif controller == "pids":
            _write(directory / "pids.max", "max" if limits.pids is None else str(limits.pids))
        elif controller == "cpu":
            _write(directory / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            _write(directory / "cpu.cfs_quota_us", "-1" if limits.cpu is None
                   else str(round(limits.cpu * CPU_PERIOD_US)))
        elif controller == "freezer":
            _write(directory / "freezer.state", "THAWED")  # a group left frozen by a crash would freeze the plugin

    def names(self) -> set[str]:
        """Every plugin group of this tag that exists in any hierarchy."""
        found: set[str] = set()
        for base in self.bases():
            with contextlib.suppress(FileNotFoundError):
                found.update(entry.name for entry in base.iterdir()
                             if entry.is_dir() and NAME_PATTERN.fullmatch(entry.name) and entry.name != DAEMON_LEAF)
        return found

    def sweep(self) -> list[int]:
        """At start: kill every process left in this tag's groups by a previous run, and remove the groups."""
        killed: set[int] = set()
        for name in sorted(self.names()):
            group = self.group(name)
            killed |= group.pids()
            group.kill_all()
            group.remove()
        return sorted(killed)

    def destroy(self) -> None:
        """Sweep, then remove the tag's own directories (at shutdown, and in tests)."""
        self.sweep()
        for base in self.bases():
            with contextlib.suppress(FileNotFoundError):
                if (base / DAEMON_LEAF).is_dir() and not (base / DAEMON_LEAF / "cgroup.procs").read_text().split():
                    (base / DAEMON_LEAF).rmdir()
                try:
                    base.rmdir()
                except OSError as exc:
                    if exc.errno != errno.ENOENT:
                        raise CgroupError(f"cannot remove {base}: {exc.strerror}") from None
