"""How far plugin processes are contained: ``--sandbox none|process`` (default ``process``).

``none``: the plugin runs as the daemon's user with only the allow-listed environment and its own
process group (what every level has).

``process`` adds, for each plugin process (and, as root, for each dependency build):
- limits: open files, no core dumps, ``no_new_privs`` (setuid binaries stay powerless);
- as root, a uid and gid of its own (allocated once per installed package and kept in the database, never
  in a file a plugin could reach), the code folder owned by root and readable by that uid alone, the
  daemon's home closed to it except the folders it must read;
- as root, cgroups (:mod:`plugdock.daemon.plugins.cgroups`) that hold memory, processes and CPU in the kernel and
  let every process of the plugin be killed at once; where the kernel offers no memory controller the
  daemon samples resident memory instead (the last resort: it notices late);
- as root, a mount namespace (:mod:`plugdock.daemon.plugins.sandbox_child`): a private size-limited ``/tmp``
  (``/var/tmp`` and ``/dev/shm`` too) that also holds its home, and an empty ``/run``;
- as root, loopback and the host's own addresses closed to its uid (:mod:`plugdock.daemon.plugins.network`);
- a marker in its environment, and its uid, by which every process it leaves behind is found and killed
  when it stops, and at the daemon's next start after a crash.
Nothing the daemon does as root follows a link in a folder a plugin can write.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plugdock.daemon.plugins.folders import _closed_parent, _ensure_mode, _link_or_copy, own_dir, private_dir
from plugdock.daemon.plugins.processes import (
    MARKER,
    MINIMUM_MEMORY,
    Confinement,
    SandboxError,
    describe_exit,
    home_tag,
    limit_hint,
    manifest_memory,
    marked_processes,
    memory_note,
    processes_of,
    resident_memory,
)
from plugdock.daemon.plugins.sandbox_child import ChildPlan, child_setup
from plugdock.daemon.state.plugin_users import PluginUsers
from plugdock.errors import PlugdockError

if TYPE_CHECKING:
    from plugdock.daemon.plugins.cgroups import CgroupManager
    from plugdock.daemon.plugins.network import NetworkPolicy

__all__ = ["MARKER", "Confinement", "Sandbox", "SandboxError", "child_setup", "describe_exit", "home_tag",
           "limit_hint", "manifest_memory", "marked_processes", "memory_note", "private_dir", "processes_of",
           "resident_memory"]

# Directories under the daemon's home a confined plugin must read; everything else there is closed to it.
READABLE_HOME_DIRS = ("plugins", "envs", "interpreters", "runtime", "build")
PRIVATE_MOUNT_ROOTS = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), Path("/run"))  # a plugin's own mounts
# Directories the daemon keeps to itself; made before any plugin runs, so none is ever open to plugins.
PRIVATE_HOME_DIRS = ("packages", "assets", "cache")
KILL_ROUNDS = 50


class Sandbox:
    """Allocates uids, prepares folders, plans each confined launch and finds stragglers for one daemon home."""

    def __init__(self, home: Path, level: str = "process", uid_base: int = 200000, open_files: int = 1024,
                 processes: int = 2048, *, users: PluginUsers | None = None, tmp_size: int = 256 * 1024 * 1024,
                 cpu: float = 1.0, cgroups: CgroupManager | bool | None = True,
                 min_memory: int = MINIMUM_MEMORY) -> None:
        if level not in ("none", "process"):
            raise SandboxError(f"sandbox must be 'none' or 'process', not {level!r}")
        self.home = home
        self.level = level
        self.uid_base = uid_base
        self.open_files = open_files
        self.processes = processes
        self.tmp_size = tmp_size
        self.cpu = cpu
        self.min_memory = min_memory
        self.separate_users = level == "process" and os.geteuid() == 0
        self.home_tag = home_tag(home)
        self.users = users
        self.network: NetworkPolicy | None = None  # set by the daemon when it installs its network rules
        self._lock = threading.Lock()
        self._mirrors: dict[str, str] = {}  # interpreter -> its mirror, once made
        self.private_mounts = self.separate_users and _mount_namespaces_work()
        self.cgroups: CgroupManager | None = None
        if self.separate_users and cgroups is True:
            self.cgroups = _cgroup_manager(self.home_tag)
        elif cgroups not in (True, False, None):
            self.cgroups = cgroups  # type: ignore[assignment]

    # -- what holds ---------------------------------------------------------------------------------------
    def report(self) -> list[str]:
        """One line per kind of containment, for ``serve``'s banner: what is enforced and by what."""
        if self.level == "none":
            return ["sandbox: none (plugins run as the daemon's user, with an allow-listed environment)"]
        if not self.separate_users:
            return ["sandbox: process (limits and no_new_privs; run as root for a uid, cgroups, private /tmp and "
                    "network rules per plugin)"]
        lines = [f"sandbox: process, a uid per plugin (from {self.uid_base + 1}), dependency builds as uid "
                 f"{self.builder_uid}"]
        if self.cgroups is not None and self.cgroups.available():
            lines.append(f"limits: {self.cgroups.level}; cpu {self.cpu or 'unlimited'} core(s) per plugin")
        else:
            lines.append("limits: no cgroup controllers writable; memory sampled every 0.5 s (late), no cpu limit")
        lines.append(f"files: private /tmp, /var/tmp, /dev/shm ({self.tmp_size // 2**20} MiB tmpfs) and empty "
                     "/run per plugin" if self.private_mounts else
                     "files: no mount namespaces here; temp folders are private folders in the home, unbounded")
        if self.network is not None:
            lines.append(self.network.level)
        return lines

    # -- users ------------------------------------------------------------------------------------------
    @property
    def builder_uid(self) -> int | None:
        """The uid dependency builds run as (None when the sandbox does not separate users)."""
        if not self.separate_users or self.users is None:
            return None
        return self.users.builder_uid

    def uid_for(self, unique_identifier: str) -> int:
        if self.users is None:
            raise SandboxError("the sandbox separates users but has no uid table")
        return self.users.uid_for(unique_identifier)

    def confinement(self, unique_identifier: str, manifest: dict[str, Any]) -> Confinement:
        marker = f"{self.home_tag}:{unique_identifier}"
        if self.level == "none":
            return Confinement("none", marker)
        memory = manifest_memory(manifest, self.min_memory)
        if not self.separate_users:
            return Confinement("process", marker, memory=memory, open_files=self.open_files)
        uid = self.uid_for(unique_identifier)
        return self._confined(marker, uid, memory, f"u{uid}")

    def builder_confinement(self, build_id: str) -> Confinement:
        """A dependency build: the builder uid, a private /tmp, limits, cgroups; no memory sampling."""
        uid = self.builder_uid
        if uid is None:
            return Confinement(self.level, f"{self.home_tag}:build:{build_id}", shared_uid=True)
        name = "build-" + "".join(c for c in build_id if c.isalnum())[:40]
        return self._confined(f"{self.home_tag}:build:{build_id}", uid, None, name, builder=True)

    def _confined(self, marker: str, uid: int, memory: int | None, group: str, builder: bool = False) -> Confinement:
        assert self.users is not None
        self.users.check(uid, "launch a plugin" if not builder else "build dependencies")
        cgroup = None
        enforced = self.cgroups.available() if self.cgroups is not None else set()
        if self.cgroups is not None and enforced:
            from plugdock.daemon.plugins.cgroups import Limits

            cgroup = self.cgroups.create(group, Limits(memory=memory, pids=self.processes,
                                                       cpu=self.cpu or None))
        in_kernel = cgroup is not None and "memory" in enforced
        if self.network is not None:
            self.network.admit(uid, builder=builder)
        return Confinement("process", marker, uid=uid, gid=uid, memory=memory, memory_in_kernel=in_kernel,
                           open_files=self.open_files, processes=self.processes, private_mounts=self.private_mounts,
                           cgroup=cgroup, shared_uid=builder)

    def plan(self, confinement: Confinement | None) -> ChildPlan | None:
        """What the child does between fork and exec for this confinement (see sandbox_child)."""
        if confinement is None or confinement.level == "none":
            return None
        carried = tuple(str(path) for path in self._carried_paths()) if confinement.private_mounts else ()
        return ChildPlan(uid=confinement.uid, gid=confinement.gid, private_mounts=confinement.private_mounts,
                         tmp_size=self.tmp_size, carried=carried,
                         cgroup_procs=confinement.cgroup.procs_files if confinement.cgroup is not None else (),
                         open_files=confinement.open_files,
                         processes=confinement.processes if confinement.uid is not None else None,
                         confined=True, parent_pid=os.getpid())

    def preexec(self, confinement: Confinement | None) -> Any:
        return child_setup(self.plan(confinement))

    def private_paths(self, confinement: Confinement | None, fallback: Path) -> tuple[Path, Path]:
        """(HOME, TMPDIR) of a confined process: in its private tmpfs when it has one, else ``fallback``
        and ``fallback/tmp``, made safely (see :func:`private_dir`)."""
        if confinement is not None and confinement.private_mounts:
            return Path("/tmp/home"), Path("/tmp")
        uid, gid = (confinement.uid, confinement.gid) if confinement is not None else (None, None)
        # the daemon's own folder for these (lock_down_home makes it only when plugins get uids of their own)
        fallback.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        for folder in (fallback, fallback / "tmp"):
            private_dir(folder, uid, gid)
        return fallback, fallback / "tmp"

    def _carried_paths(self) -> list[Path]:
        """Folders the plugin needs that a private /tmp would cover: the home (code, environments,
        interpreters) when it lies under /tmp, /var/tmp or /dev/shm."""
        home = self.home.resolve()
        return [home] if _covered(home) else []

    # -- folders ----------------------------------------------------------------------------------------
    def lock_down_home(self) -> None:
        """Close the daemon's home to plugin users except the folders they must read (called at start,
        before any plugin runs: every folder the daemon will write is made here with its final mode)."""
        if not self.separate_users:
            return
        self.home.mkdir(parents=True, exist_ok=True)
        closed = _closed_parent(self.home)
        if closed is not None:
            raise SandboxError(
                f"the sandbox runs each plugin as its own user, but other users cannot enter {closed} "
                f"(mode {stat.S_IMODE(os.stat(closed).st_mode):o}), a parent of the home {self.home}: choose a "
                "home outside it, allow entering it (chmod o+x), or run with --sandbox none")
        os.chown(self.home, 0, 0, follow_symlinks=False)
        os.chmod(self.home, 0o711)  # enter, but not list
        for name in (*READABLE_HOME_DIRS, *PRIVATE_HOME_DIRS):
            (self.home / name).mkdir(mode=0o700, exist_ok=True)
        for entry in self.home.iterdir():
            if entry.is_symlink():  # nothing in the home is a link the daemon made: refuse to follow it
                entry.unlink()
            elif entry.name in READABLE_HOME_DIRS and entry.is_dir():
                os.chmod(entry, 0o711)
            elif entry.is_dir():
                os.chmod(entry, 0o700)
            else:
                os.chmod(entry, 0o600)  # the database (its WAL files follow its mode), keys
        if self.users is not None:
            self.users.import_legacy_table(self.home / "uids.json")

    def restrict_code(self, unique_identifier: str, directory: Path) -> None:
        """The plugin's code folder: readable by that plugin's group alone, writable by nobody but root
        (done at install, before the folder takes its final name)."""
        if not self.separate_users:
            return
        own_dir(directory, 0, self.uid_for(unique_identifier), 0o750)

    def make_readable(self, root: Path) -> None:
        """Code and environments: owned by the daemon, readable (never writable) by plugin users.

        Bits are only added (and others' write removed), so hard-linked files keep their modes."""
        if not self.separate_users:
            return
        for folder, _dirs, files in os.walk(root):
            _ensure_mode(folder, 0o555)
            for name in files:
                path = os.path.join(folder, name)
                mode = os.lstat(path).st_mode
                if stat.S_ISREG(mode):
                    _ensure_mode(path, 0o555 if mode & 0o111 else 0o444)

    # -- interpreters -----------------------------------------------------------------------------------
    def reachable(self, path: str) -> bool:
        """Whether a user with no relation to the file's owner can reach and run ``path``."""
        if not self.separate_users:
            return True
        real = Path(os.path.realpath(path))
        if self.private_mounts and _covered(real) and not real.is_relative_to(self.home.resolve()):
            return False  # a private /tmp (or /var/tmp, /dev/shm, /run) hides it: only the home is carried over
        return _closed_parent(real) is None and bool(os.stat(real).st_mode & stat.S_IXOTH)

    def reachable_interpreter(self, interpreter: str) -> str:
        """``interpreter`` itself when plugin users can run it, else a read-only mirror of its installation
        under the daemon's home (hard links where the filesystem allows, so it costs no space)."""
        if interpreter in self._mirrors:
            return self._mirrors[interpreter]
        if self.reachable(interpreter):
            return interpreter
        probe = subprocess.run([interpreter, "-c", "import sys; print(sys.base_prefix)"], capture_output=True,
                               text=True, check=False)
        prefix = Path(probe.stdout.strip())
        if probe.returncode != 0 or not prefix.is_dir():
            raise SandboxError(f"cannot find the installation of {interpreter} to mirror for sandboxed plugins")
        real = Path(os.path.realpath(interpreter))
        try:
            relative = real.relative_to(prefix.resolve())
        except ValueError:
            raise SandboxError(f"{interpreter} lies outside its own prefix {prefix}; install a Python that plugin "
                               "users can read (outside a private home) or run with --sandbox none") from None
        target = self.home / "interpreters" / hashlib.sha256(str(prefix).encode()).hexdigest()[:12]
        with self._lock:
            if not (target / relative).exists():
                staging = target.with_name(target.name + ".part")
                shutil.rmtree(staging, ignore_errors=True)
                shutil.copytree(prefix, staging, symlinks=True, copy_function=_link_or_copy)
                self.make_readable(staging)
                os.replace(staging, target)
            self._mirrors[interpreter] = str(target / relative)
        return str(target / relative)

    def library_path(self, python: Path) -> str | None:
        """The mirrored interpreter's ``lib`` folder, for ``LD_LIBRARY_PATH`` (its RPATH names the original)."""
        real = Path(os.path.realpath(python))
        mirrors = (self.home / "interpreters").resolve()
        if mirrors in real.parents:
            return str(real.parent.parent / "lib")
        return None

    # -- stragglers -------------------------------------------------------------------------------------
    def kill_all(self, confinement: Confinement | None) -> int:
        """Kill every process of a confined plugin: its cgroup (frozen first, so none can fork away), every
        process of its uid, and anything carrying its marker; the count killed."""
        if confinement is None:
            return 0
        killed = 0
        if confinement.cgroup is not None:
            with contextlib.suppress(OSError, PlugdockError):
                killed += confinement.cgroup.kill_all()
                if confinement.shared_uid:  # one group per build: gone with it
                    confinement.cgroup.remove()
        if confinement.uid is not None and not confinement.shared_uid:
            # every process a plugin leaves runs as its uid (no_new_privs: none can change it), so the uid
            # kill also takes the ones carrying its marker
            return killed + self.kill_uid(confinement.uid)
        return killed + self.kill_stragglers(confinement.marker)

    def kill_uid(self, uid: int) -> int:
        """Every process of a plugin uid, killed by a ``kill -9 -1`` run as that uid: the kernel signals the
        whole set at once, so a process that forks and exits in a loop cannot slip between scans."""
        if self.users is None:
            return 0
        self.users.check(uid, "kill processes")
        left = processes_of(uid)
        before = len(left)
        for _ in range(KILL_ROUNDS):
            if not left:
                break
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(["kill", "-9", "--", "-1"], user=uid, group=uid, extra_groups=[],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=10,
                               env={"PATH": "/usr/bin:/bin"})
            left = processes_of(uid)
        return before

    def kill_stragglers(self, marker_prefix: str) -> int:
        """Kill every process carrying this marker; the count killed."""
        killed = 0
        for pid in marked_processes(marker_prefix):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        return killed

    def close(self) -> None:
        """At shutdown, after every plugin stopped: remove this home's cgroups (none pile up across runs)."""
        if self.cgroups is not None:
            with contextlib.suppress(OSError, PlugdockError):
                self.cgroups.destroy()

    def kill_leftovers_of_previous_run(self) -> int:
        """At start-up: processes a crashed daemon of this home left behind — by marker, by every uid this
        home ever handed out (a double-forked child with an empty environment has no marker), and by cgroup."""
        killed = self.kill_stragglers(f"{self.home_tag}:")
        if self.separate_users and self.users is not None:
            for uid in self.users.all_uids():  # the builder's uid is in the table too
                killed += self.kill_uid(uid)
        if self.cgroups is not None:
            with contextlib.suppress(OSError, PlugdockError):
                killed += len(self.cgroups.sweep())
        return killed


def _covered(path: Path) -> bool:
    """Whether a plugin's own mounts cover ``path`` (it lies under /tmp, /var/tmp, /dev/shm or /run)."""
    return any(root == path or root in path.parents for root in PRIVATE_MOUNT_ROOTS)


def _mount_namespaces_work() -> bool:
    """Whether this host lets the daemon give a child its own mount namespace and tmpfs (containers without
    CAP_SYS_ADMIN do not): tried once with a throwaway child."""
    plan = ChildPlan(private_mounts=True, tmp_size=1024 * 1024)
    try:
        probe = subprocess.run(["true"], preexec_fn=child_setup(plan), capture_output=True, check=False,
                               timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def _cgroup_manager(tag: str) -> CgroupManager | None:
    from plugdock.daemon.plugins.cgroups import CgroupManager

    try:
        return CgroupManager(tag)
    except (OSError, PlugdockError) as exc:
        sys.stderr.write(f"plugdock: cgroups unavailable ({exc}); memory will be sampled\n")
        return None


