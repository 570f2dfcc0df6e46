"""``.difyignore`` (else ``.gitignore``) with gitignore semantics, as the official packager applies it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pathspec


def ignore_filter(root: str | Path) -> Callable[[str], bool]:
    """A predicate telling whether a POSIX path (directories end with ``/``) is left out of the package."""
    root = Path(root)
    for name in (".difyignore", ".gitignore"):
        file = root / name
        if file.is_file():
            # pathspec itself skips blank lines and comments
            lines = [line.strip() for line in file.read_text(encoding="utf-8", errors="replace").splitlines()]
            spec = pathspec.GitIgnoreSpec.from_lines(lines)
            return spec.match_file
    return lambda _path: False
