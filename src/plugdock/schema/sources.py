"""Where a plugin's files come from: a folder on disk (validate, package) or a package (upload, install).

Symbolic links in a folder follow the official packager where that is safe: it reads every file with
``os.ReadFile``, so a link is packed as its target's bytes. A link that resolves to a regular file inside the
plugin is therefore an ordinary file here; any other link (to a directory, outside the plugin, or dangling) is
refused by ``validate`` and ``package`` alike, naming the link and its target, so a package never carries bytes
from outside the folder it was built from. One exception keeps the official catalogue packable: a root
``.difyignore``/``.gitignore`` linked to a shared file outside the plugin (models/gemini links
``../../.difyignore``) is read for its patterns, as both packagers read it, and left out of the package.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Protocol

IGNORE_FILES = (".difyignore", ".gitignore")


class FileSource(Protocol):
    """Read-only view of a plugin's files, by POSIX path relative to the plugin root."""

    name: str

    def read(self, path: str) -> bytes | None: ...

    def files(self) -> list[str]: ...


@dataclass(frozen=True)
class Link:
    """A symbolic link in a plugin folder that is not packed as a file: ``refused`` ones fail the build."""

    path: str
    target: str
    reason: str
    refused: bool = True

    def message(self) -> str:
        if self.refused:
            return (f"symbolic link to {self.target!r}, which {self.reason}: it cannot be packaged (the official "
                    "packager would copy whatever it points at): replace it with the file or add it to .difyignore")
        return (f"symbolic link to {self.target!r}, which {self.reason}: its patterns apply, but it is left out of the "
                "package (the official packager would pack the target's bytes)")


def is_safe_relative(path: str) -> bool:
    """A reference inside a plugin must stay inside it: relative, no ``..``, no backslashes."""
    if not path or path.startswith(("/", "\\")) or "\\" in path or (len(path) > 1 and path[1] == ":"):
        return False
    return ".." not in path.split("/")


class DirectorySource:
    """A plugin folder on disk; ``exclude`` hides files (e.g. those ``.difyignore`` leaves out)."""

    def __init__(self, root: str | os.PathLike[str], exclude: Callable[[str], bool] | None = None) -> None:
        self.root = FsPath(root).resolve()
        self.name = str(root)
        self._exclude = exclude
        self._files: list[str] | None = None
        self._file_set: set[str] | None = None
        self._links: list[Link] = []

    @property
    def links(self) -> list[Link]:
        """Links that are not packed as files (see the module docstring), found while listing the files."""
        self.files()
        return list(self._links)

    def files(self) -> list[str]:
        if self._files is None:
            found: list[str] = []
            for dirpath, dirnames, filenames in os.walk(self.root):
                rel_dir = FsPath(dirpath).relative_to(self.root).as_posix()
                prefix = "" if rel_dir == "." else rel_dir + "/"
                if self._exclude:
                    dirnames[:] = [d for d in dirnames if not self._exclude(prefix + d + "/")]
                dirnames.sort()
                for name in sorted(d for d in dirnames if os.path.islink(os.path.join(dirpath, d))):
                    self._link(prefix + name)  # os.walk does not enter linked directories
                for name in sorted(filenames):
                    rel = prefix + name
                    if self._exclude and self._exclude(rel):
                        continue
                    if not os.path.islink(os.path.join(dirpath, name)) or self._link(rel):
                        found.append(rel)
            self._files = found
        return self._files

    def _link(self, rel: str) -> bool:
        """Whether the link at ``rel`` is packed as its target's bytes; records it in ``links`` otherwise."""
        link = self.root / rel
        target = os.readlink(link)
        resolved = link.resolve()
        inside = self.root in resolved.parents
        if resolved.is_dir():
            reason = "is a directory (the official packager does not follow those)"
        elif not resolved.exists():
            reason = "does not exist"
        elif not resolved.is_file():
            reason = "is not a regular file"
        elif inside:
            return True
        elif rel in IGNORE_FILES:
            self._links.append(Link(rel, target, "leaves the plugin", refused=False))
            return False
        else:
            reason = "leaves the plugin"
        self._links.append(Link(rel, target, reason))
        return False

    def read(self, path: str) -> bytes | None:
        if self._file_set is None:
            self._file_set = set(self.files())
        if not is_safe_relative(path) or path not in self._file_set:
            return None
        try:
            return (self.root / path).read_bytes()
        except OSError:
            return None
