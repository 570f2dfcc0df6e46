"""Import a plugin in-process as the daemon's ``python -m main`` does: its folder first on ``sys.path``.

Official plugins import their own modules by top-level name (``from tools.parse import …``), which works
only with the plugin folder on ``sys.path``. In a test process several plugins may be loaded, each with its
own ``tools`` package, so each client owns a *module namespace*: while one of its calls runs, its folder is
first on ``sys.path`` and ``sys.modules`` holds its modules under the plugin's top-level names (another
plugin's are set aside, and put back after). Calls from one client at a time, as a test makes them.
"""

from __future__ import annotations

import importlib
import sys
import threading
from pathlib import Path
from types import ModuleType, TracebackType

_SWAP = threading.RLock()


def top_level_names(root: Path) -> set[str]:
    """Names a plugin folder provides to ``import``: its ``*.py`` files and its folders holding Python."""
    names: set[str] = set()
    for entry in root.iterdir():
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        if entry.is_file() and entry.suffix == ".py" and entry.stem.isidentifier():
            names.add(entry.stem)
        elif entry.is_dir() and entry.name.isidentifier() and any(entry.glob("*.py")):
            names.add(entry.name)
    return names


_LIBRARIES = tuple({str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)})


def _library(module: ModuleType) -> bool:
    """Built-in, standard-library or installed: already imported in a daemon's plugin process too, where
    it wins over a plugin file of the same name, so it is never set aside."""
    origin = getattr(module, "__file__", None)
    if not origin:
        return not getattr(module, "__path__", None)  # built-in or frozen (a namespace package has a path)
    path = str(Path(origin).resolve())
    return path.startswith(_LIBRARIES) or "site-packages" in path or "dist-packages" in path


def _under(module: ModuleType, root: Path) -> bool:
    """Whether the module was loaded from ``root`` (a namespace package by any of its paths)."""
    places = [getattr(module, "__file__", None), *list(getattr(module, "__path__", None) or [])]
    return any(place and Path(place).resolve().is_relative_to(root) for place in places)


class PluginImports:
    """The context of one plugin's imports; enter it around loading and around every call."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.names = top_level_names(self.root)
        self._own: dict[str, ModuleType] = {}
        self._aside: dict[str, ModuleType] = {}
        self._present: set[str] = set()
        self._depth = 0

    def _ours(self, name: str) -> bool:
        return name.partition(".")[0] in self.names

    def __enter__(self) -> PluginImports:
        _SWAP.acquire()
        self._depth += 1
        if self._depth > 1:
            return self
        for name, module in list(sys.modules.items()):
            if self._ours(name) and not _under(module, self.root) and not _library(module):
                self._aside[name] = sys.modules.pop(name)  # another plugin's ``tools`` (or a library's)
        self._present = set(sys.modules)
        sys.modules.update(self._own)
        sys.path.insert(0, str(self.root))
        importlib.invalidate_caches()  # a file a test wrote a moment ago must be found, as a new process would
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._depth -= 1
            if self._depth > 0:
                return
            for name in [n for n in sys.modules if self._ours(n) and n not in self._present]:
                self._own[name] = sys.modules.pop(name)
            sys.modules.update(self._aside)
            self._aside = {}
            if str(self.root) in sys.path:
                sys.path.remove(str(self.root))
        finally:
            _SWAP.release()
