"""What a confined process does between fork and exec, in this order and as root until the last steps:

1. a mount namespace of its own, where ``/tmp`` is a size-limited tmpfs (``/var/tmp`` and ``/dev/shm`` are the
   same tmpfs), ``/run`` is empty (no database or broker sockets), and the daemon's home, when it lies under
   one of those, is bound back at the same path so the code and environment stay reachable;
2. its pid written into its cgroups (memory, pids, cpu, freezer), so every process it forks is counted and
   killed with it;
3. resource limits, then the switch to its own uid and gid with no supplementary groups;
4. the parent-death signal (cleared by the uid switch, so set after it) and ``no_new_privs``.

Only ``os`` calls and pre-resolved libc functions are used here: the daemon is multi-threaded, and the child
of a fork may not take locks another thread held.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWNS = 0x00020000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MASKED_WITH_TMP = ("/var/tmp", "/dev/shm")
EMPTIED = ("/run",)

_libc = ctypes.CDLL(None, use_errno=True)
_mount = _libc.mount
_mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_unshare = _libc.unshare
_unshare.argtypes = [ctypes.c_int]
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


@dataclass(frozen=True)
class ChildPlan:
    """Everything the child needs, computed in the parent (where errors can still be reported)."""

    uid: int | None = None
    gid: int | None = None
    private_mounts: bool = False
    tmp_size: int = 256 * 1024 * 1024
    carried: tuple[str, ...] = ()  # folders under /tmp, /var/tmp or /dev/shm that must stay visible
    cgroup_procs: tuple[str, ...] = ()
    open_files: int | None = None
    processes: int | None = None
    confined: bool = False  # no_new_privs and no core dumps
    parent_pid: int = 0


class ChildSetupError(OSError):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise ChildSetupError(errno, f"{what}: {os.strerror(errno)}")


def _mount_call(source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    _check(_mount(source.encode() if source else None, target.encode(), fstype.encode() if fstype else None,
                  flags, data.encode() if data else None), f"mount {target}")


def _is_real_dir(path: str) -> bool:
    try:
        return os.path.isdir(path) and not os.path.islink(path)
    except OSError:
        return False


def private_mounts(plan: ChildPlan) -> None:
    """Step 1 of the module docstring. Folders to carry are opened before /tmp is covered, then bound back
    through ``/proc/self/fd`` (the only way left to reach them once the tmpfs lies on top)."""
    _check(_unshare(CLONE_NEWNS), "unshare a mount namespace")
    _mount_call(None, "/", None, MS_REC | MS_PRIVATE, None)  # nothing done here reaches the host
    kept = [(path, os.open(path, os.O_PATH | os.O_DIRECTORY)) for path in plan.carried]
    _mount_call("plugdock-tmp", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={plan.tmp_size},mode=1777")
    home = "/tmp/home"
    os.mkdir(home, 0o700)
    if plan.uid is not None:
        os.chown(home, plan.uid, plan.gid if plan.gid is not None else plan.uid)
    for target in MASKED_WITH_TMP:
        if _is_real_dir(target):
            _mount_call("/tmp", target, None, MS_BIND, None)
    for target in EMPTIED:
        if _is_real_dir(target):
            _mount_call("plugdock-run", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                        "size=65536,mode=755")
    for path, fd in kept:
        os.makedirs(path, mode=0o711, exist_ok=True)
        _mount_call(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC, None)
        os.close(fd)


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def child_setup(plan: ChildPlan | None) -> Callable[[], None]:
    """The function the child runs between fork and exec (Python's own uid switch is not used: it happens
    before this function, and the namespace and cgroup steps need root)."""

    def setup() -> None:
        if plan is None:
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            return
        if plan.private_mounts:
            private_mounts(plan)
        pid = str(os.getpid())
        for procs in plan.cgroup_procs:
            _write(procs, pid)
        if plan.confined:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if plan.open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (plan.open_files, plan.open_files))
        if plan.processes is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (plan.processes, plan.processes))
        if plan.uid is not None:
            gid = plan.gid if plan.gid is not None else plan.uid
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(plan.uid, plan.uid, plan.uid)
            if os.getuid() != plan.uid or os.geteuid() != plan.uid:  # never exec with privileges left
                os._exit(126)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # die with the daemon, even when it is SIGKILLed
        if plan.parent_pid and os.getppid() != plan.parent_pid:  # the daemon died before the line above
            os._exit(125)
        if plan.confined:
            _check(_prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "set no_new_privs")

    return setup
