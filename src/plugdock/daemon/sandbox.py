"""How far plugin processes are contained: ``--sandbox none|process`` (default ``process``).

``none``: the plugin runs as the daemon's user with only the allow-listed environment and its own
process group (what every level has).

``process`` adds, for each plugin process:
- resource limits: resident memory from the manifest's ``resource.memory`` (enforced by the daemon's
  watchdog, which samples the plugin's RSS and stops it with a named error: RLIMIT_AS cannot be used
  because every Python thread reserves megabytes of address space it never touches, and this kind of
  host has no delegated cgroup v2 memory controller), open files, no core dumps; ``no_new_privs`` so
  nothing it runs can gain privileges (setuid binaries stay powerless);
- when the daemon runs as root: a uid and gid of its own (allocated once per installed package), a private
  home and temp folder only that uid can enter, the code folder owned by root and read-only to it,
  the daemon's home closed to it except the folders it must read, and a process-count limit;
- a marker in its environment so that every process it leaves behind (even children that escaped
  its process group) is found and killed when it stops, and at the daemon's next start after a crash.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugdock.errors import PlugdockError

MARKER = "PLUGDOCK_INSTANCE"
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
DEFAULT_MEMORY = 256 * 1024 * 1024
# Manifests sometimes declare less than an interpreter needs to start; below this the limit would only
# make the plugin unusable, so the effective limit never goes lower.
MINIMUM_MEMORY = 128 * 1024 * 1024
UID_RANGE = 1 << 22  # uids handed out: uid_base .. uid_base + UID_RANGE - 1
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# Directories under the daemon's home a confined plugin must read; everything else there is closed to it.
READABLE_HOME_DIRS = ("plugins", "envs", "wheels", "interpreters", "runtime")


class SandboxError(PlugdockError):
    code = "sandbox_error"


@dataclass(frozen=True)
class Confinement:
    """What one plugin process is allowed: who it runs as and the limits applied before it starts."""

    level: str
    marker: str
    uid: int | None = None
    gid: int | None = None
    memory: int | None = None
    open_files: int = 1024
    processes: int | None = None


def manifest_memory(manifest: dict[str, Any]) -> int:
    value: Any = (manifest.get("resource") or {}).get("memory")
    try:
        memory = int(value)
    except (TypeError, ValueError):
        return DEFAULT_MEMORY
    return max(memory, MINIMUM_MEMORY) if memory > 0 else DEFAULT_MEMORY


def _prctl(option: int, value: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(option, value, 0, 0, 0)


def child_setup(confinement: Confinement | None) -> Callable[[], None]:
    """The function the child runs between fork and exec (after the uid switch, which clears PDEATHSIG)."""

    def setup() -> None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # die with the daemon, even when it is SIGKILLed
        if confinement is None or confinement.level == "none":
            return
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (confinement.open_files, confinement.open_files))
        if confinement.processes is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (confinement.processes, confinement.processes))

    return setup


def describe_exit(code: int | None, confinement: Confinement | None, last_lines: list[str]) -> str:
    """Why a plugin process ended, naming the limit it hit when the evidence points to one."""
    text = "\n".join(last_lines)
    reason = f"the plugin process exited with code {code}"
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            reason = f"the plugin process was killed by {signal.Signals(-code).name}"
    if confinement is None or confinement.level == "none":
        return reason
    if "Too many open files" in text:
        return f"{reason}: it exceeded its open-files limit ({confinement.open_files})"
    if "Resource temporarily unavailable" in text and confinement.processes is not None:
        return f"{reason}: it exceeded its process limit ({confinement.processes})"
    return reason


def memory_note(confinement: Confinement) -> str:
    return f"its limit is resource.memory = {confinement.memory} bytes in manifest.yaml; raise it there"


def resident_memory(pid: int) -> int | None:
    """Resident set size of a process in bytes (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            return int(handle.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


def limit_hint(message: str, confinement: Confinement | None) -> str:
    """An invocation error caused by a limit gets the limit's name appended."""
    if confinement is None or confinement.level == "none":
        return message
    if "Too many open files" in message:
        return f"{message} (the plugin hit its open-files limit: {confinement.open_files})"
    return message


def home_tag(home: Path) -> str:
    """What the markers of one daemon home's plugin processes start with (``<tag>:<unique identifier>``)."""
    return hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]


def marked_processes(marker_prefix: str, uid: int | None = None) -> list[int]:
    """Live processes whose environment carries a marker starting with ``marker_prefix`` (or owned by ``uid``)."""
    found = []
    needle = f"{MARKER}={marker_prefix}".encode()
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            if (uid is not None and entry.stat().st_uid == uid) or any(
                    item.startswith(needle) for item in (entry / "environ").read_bytes().split(b"\0")):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


class Sandbox:
    """Allocates uids, prepares folders and finds stragglers for one daemon home."""

    def __init__(self, home: Path, level: str = "process", uid_base: int = 200000, open_files: int = 1024,
                 processes: int = 2048) -> None:
        if level not in ("none", "process"):
            raise SandboxError(f"sandbox must be 'none' or 'process', not {level!r}")
        self.home = home
        self.level = level
        self.uid_base = uid_base
        self.open_files = open_files
        self.processes = processes
        self.separate_users = level == "process" and os.geteuid() == 0
        self.home_tag = home_tag(home)
        self._lock = threading.Lock()
        self._mirrors: dict[str, str] = {}  # interpreter -> its mirror, once made

    # -- users ------------------------------------------------------------------------------------------
    def uid_for(self, unique_identifier: str) -> int:
        """A stable uid per installed package (kept in ``uids.json``): its private files stay its own, and no
        other plugin shares the uid, so every process of that uid may be killed when the plugin stops."""
        path = self.home / "uids.json"
        with self._lock:
            table: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}
            if unique_identifier not in table:
                # Derived from the home and the package, so daemons with different homes on one machine
                # (which cannot see each other's tables) almost never pick the same uid; probe on a clash.
                taken = set(table.values())
                digest = hashlib.sha256(f"{self.home_tag}:{unique_identifier}".encode()).digest()
                uid = self.uid_base + int.from_bytes(digest[:4], "big") % UID_RANGE
                while uid in taken:
                    uid = self.uid_base + (uid - self.uid_base + 1) % UID_RANGE
                table[unique_identifier] = uid
                staging = path.with_suffix(".tmp")
                staging.write_text(json.dumps(table, indent=1))
                os.chmod(staging, 0o600)
                os.replace(staging, path)
            return table[unique_identifier]

    def confinement(self, unique_identifier: str, manifest: dict[str, Any]) -> Confinement:
        marker = f"{self.home_tag}:{unique_identifier}"
        if self.level == "none":
            return Confinement("none", marker)
        uid = self.uid_for(unique_identifier) if self.separate_users else None
        return Confinement("process", marker, uid=uid, gid=uid, memory=manifest_memory(manifest),
                           open_files=self.open_files, processes=self.processes if uid is not None else None)

    # -- folders ----------------------------------------------------------------------------------------
    def lock_down_home(self) -> None:
        """Close the daemon's home to plugin users except the folders they must read (called at start)."""
        if not self.separate_users:
            return
        self.home.mkdir(parents=True, exist_ok=True)
        closed = _closed_parent(self.home)
        if closed is not None:
            raise SandboxError(
                f"the sandbox runs each plugin as its own user, but other users cannot enter {closed} "
                f"(mode {stat.S_IMODE(os.stat(closed).st_mode):o}), a parent of the home {self.home}: choose a "
                "home outside it, allow entering it (chmod o+x), or run with --sandbox none")
        os.chmod(self.home, 0o711)  # enter, but not list
        for entry in self.home.iterdir():
            if entry.name in READABLE_HOME_DIRS and entry.is_dir():
                os.chmod(entry, 0o711)
            elif entry.is_dir():
                os.chmod(entry, 0o700)
            else:
                os.chmod(entry, 0o600)  # the database (its WAL files follow its mode), keys, uid table
        for name in READABLE_HOME_DIRS:
            (self.home / name).mkdir(mode=0o711, exist_ok=True)

    def own_private_dir(self, confinement: Confinement, path: Path) -> None:
        """Hand the plugin's home folder and its ``tmp`` to the plugin's user alone."""
        if confinement.uid is not None:
            for folder in (path, path / "tmp"):
                os.chown(folder, confinement.uid, confinement.gid or confinement.uid)
                os.chmod(folder, 0o700)

    def restrict_code(self, confinement: Confinement, directory: Path) -> None:
        """The plugin's code folder: readable by that plugin's group alone, writable by nobody but root."""
        if confinement.uid is None:
            return
        os.chown(directory, 0, confinement.gid or confinement.uid)
        os.chmod(directory, 0o750)

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
    def kill_stragglers(self, marker_prefix: str, uid: int | None = None) -> int:
        """Kill every process carrying this marker (or, for a confined uid, owned by it); the count killed."""
        killed = 0
        for pid in marked_processes(marker_prefix, uid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        return killed

    def kill_leftovers_of_previous_run(self) -> int:
        """At start-up: processes a crashed daemon of this home left behind."""
        return self.kill_stragglers(f"{self.home_tag}:")


def _closed_parent(path: Path) -> Path | None:
    """The nearest folder above ``path`` that other users cannot enter, if any (the one to name in errors)."""
    for parent in path.resolve().parents:
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return parent
    return None


def _ensure_mode(path: str, readable: int) -> None:
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    wanted = (mode | readable) & ~0o002
    if wanted != mode:
        os.chmod(path, wanted)


def _link_or_copy(source: str, destination: str) -> str:
    """Hard-link files others may already read (nothing changes for the original); copy the rest."""
    if os.stat(source).st_mode & stat.S_IROTH:
        try:
            os.link(source, destination)
            return destination
        except OSError:
            pass
    shutil.copy2(source, destination)
    return destination
