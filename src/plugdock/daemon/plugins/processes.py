"""What a confined plugin process is allowed, how it is found among the host's processes, and how its end
is explained (the limit it hit, named)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plugdock.errors import PlugdockError

if TYPE_CHECKING:
    from plugdock.daemon.plugins.cgroups import PluginCgroup

MARKER = "PLUGDOCK_INSTANCE"
DEFAULT_MEMORY = 256 * 1024 * 1024
# Manifests sometimes declare less than an interpreter needs to start; below this the limit would only
# make the plugin unusable, so the effective limit never goes lower.
MINIMUM_MEMORY = 128 * 1024 * 1024
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


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
    memory_in_kernel: bool = False  # a cgroup holds it; otherwise the daemon samples resident memory
    open_files: int = 1024
    processes: int | None = None
    private_mounts: bool = False
    cgroup: PluginCgroup | None = None
    shared_uid: bool = False  # dependency builds share the builder uid: kill by cgroup and marker only


def manifest_memory(manifest: dict[str, Any], floor: int = MINIMUM_MEMORY) -> int:
    """The memory limit of a plugin: its manifest's ``resource.memory``, never below ``floor``
    (PLUGDOCK_PLUGIN_MIN_MEMORY) nor below what an interpreter needs to start."""
    value: Any = (manifest.get("resource") or {}).get("memory")
    try:
        memory = int(value)
    except (TypeError, ValueError):
        memory = DEFAULT_MEMORY
    return max(memory if memory > 0 else DEFAULT_MEMORY, floor, MINIMUM_MEMORY)


def describe_exit(code: int | None, confinement: Confinement | None, last_lines: list[str]) -> str:
    """Why a plugin process ended, naming the limit it hit when the evidence points to one."""
    text = "\n".join(last_lines)
    reason = f"the plugin process exited with code {code}"
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            reason = f"the plugin process was killed by {signal.Signals(-code).name}"
    if confinement is None or confinement.level == "none":
        return reason
    if confinement.cgroup is not None and confinement.memory is not None and confinement.cgroup.oom_killed():
        return (f"{reason}: it reached its memory limit of {confinement.memory // 2**20} MiB and the kernel "
                f"stopped it (files in its /tmp count too; {memory_note(confinement)})")
    if "Too many open files" in text:
        return f"{reason}: it exceeded its open-files limit ({confinement.open_files})"
    if "Resource temporarily unavailable" in text and confinement.processes is not None:
        return f"{reason}: it exceeded its process limit ({confinement.processes})"
    return reason


def memory_note(confinement: Confinement) -> str:
    return (f"its limit, {confinement.memory} bytes, is the larger of resource.memory in manifest.yaml and "
            "PLUGDOCK_PLUGIN_MIN_MEMORY; raise one of them")


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


def _other_processes() -> Iterator[Path]:
    """``/proc/<pid>`` of every process but this one."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != me:
            yield entry


def marked_processes(marker_prefix: str) -> list[int]:
    """Live processes whose environment carries a marker starting with ``marker_prefix``."""
    found = []
    needle = f"{MARKER}={marker_prefix}".encode()
    for entry in _other_processes():
        with contextlib.suppress(OSError):
            if any(item.startswith(needle) for item in (entry / "environ").read_bytes().split(b"\0")):
                found.append(int(entry.name))
    return found


def processes_of(uid: int) -> list[int]:
    """Live processes owned by ``uid`` (this process excluded)."""
    found = []
    for entry in _other_processes():
        with contextlib.suppress(OSError):
            if entry.stat().st_uid == uid:
                found.append(int(entry.name))
    return found
