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
from pathlib import Path

from plugdock.daemon.plugins.cgroup_group import (
    CONTROLLERS,
    CPU_PERIOD_US,
    DAEMON_LEAF,
    NAME_PATTERN,
    V1_PROBE,
    V2_PROBE,
    CgroupError,
    Limits,
    PluginCgroup,
    _membership,
    _number,
    _parents,
    _read,
    _write,
    join,
)

__all__ = ["CgroupError", "CgroupManager", "Limits", "PluginCgroup", "join"]


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
