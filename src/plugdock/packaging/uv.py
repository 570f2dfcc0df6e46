"""The one place that finds ``uv``: the packager's ``uv export`` and the daemon's environment builds both use it.

``UV_PATH`` first, then the ``uv`` package's own binary (``plugdock[daemon]`` installs it), then ``uv`` on
PATH, and last ``python -m uv``.
"""

from __future__ import annotations

import os
import shutil
import sys


def uv_binary() -> str | None:
    """The uv executable itself, links resolved (a shim on PATH may need its owner's home), or None."""
    explicit = os.environ.get("UV_PATH")
    if explicit:
        return os.path.realpath(explicit)
    try:
        from uv import find_uv_bin

        return os.path.realpath(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        return os.path.realpath(found) if found else None


def uv_command() -> list[str]:
    """The command line that runs uv here: its binary, else ``python -m uv`` (which fails by name if missing)."""
    binary = uv_binary()
    return [binary] if binary else [sys.executable, "-m", "uv"]
