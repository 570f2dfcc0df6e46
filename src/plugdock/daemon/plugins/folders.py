"""Folders the daemon makes or opens as root where plugins can write or read: never through a link."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path

from plugdock.daemon.plugins.processes import SandboxError


def own_dir(path: Path, uid: int, gid: int, mode: int) -> None:
    """Give the real directory at ``path`` to ``uid:gid`` with ``mode``, through a descriptor of the directory
    itself (a link in its place fails instead of being followed)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def private_dir(path: Path, uid: int | None, gid: int | None) -> None:
    """Make ``path`` a real directory owned by ``uid`` (mode 700), never following a link: its parent is
    opened without following links, a link or file in its place is removed, and the ownership is changed
    through a descriptor of the directory itself, so swapping ``path`` for a link changes nothing."""
    parent_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for _ in range(3):
            try:
                fd = os.open(path.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(path.name, 0o700, dir_fd=parent_fd)
                continue
            except OSError:  # a link (ELOOP) or a file (ENOTDIR) in its place: removed, never followed
                _remove_entry(parent_fd, path.name)
                continue
            try:
                if uid is not None:
                    os.fchown(fd, uid, gid if gid is not None else uid)
                os.fchmod(fd, 0o700)
                return
            finally:
                os.close(fd)
        raise SandboxError(f"could not make {path} a private folder: something keeps replacing it")
    finally:
        os.close(parent_fd)


def _remove_entry(parent_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=parent_fd)
    except IsADirectoryError:
        shutil.rmtree(name, dir_fd=parent_fd)
    except FileNotFoundError:
        pass


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
