"""The layout holds: import-linter's contracts (pyproject.toml) are kept, no import cycles, no oversized modules.

Imports inside functions and under ``TYPE_CHECKING`` count, as they do for import-linter: a lazy import is still a
dependency, only a later one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "plugdock"
MAX_LINES = 450
# The daemon is being split into sub-packages and the init templates are becoming files (issue 13); until then
# their oversized modules and the daemon's cycles are expected. Anything of the kind elsewhere fails at once.
PENDING: tuple[str, ...] = ()
PENDING_REASON = "the layout issue splits daemon/app.py and cli/templates.py"


def pending(module: str) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in PENDING)


def lint_imports_command() -> list[str]:
    """The ``lint-imports`` beside this interpreter (the one the test extra installed), else the one on PATH."""
    beside = Path(sys.executable).parent / "lint-imports"
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert found, "lint-imports is missing: pip install -e '.[test]' installs import-linter"
    return [found]


def test_import_contracts_are_kept() -> None:
    """``lint-imports`` with the pyproject contracts (layers, lean plugin side, no sibling cycles) exits 0."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([*lint_imports_command(), "--no-cache", str(ROOT / "pyproject.toml")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"lint-imports exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    assert "0 broken" in result.stdout, result.stdout


def source_modules() -> list[Path]:
    """Every module of the package: .py files in folders that are packages (the init scaffolds are templates)."""
    def in_package(path: Path) -> bool:
        return all((folder / "__init__.py").exists() for folder in path.parents if folder.is_relative_to(PACKAGE))

    return sorted(path for path in PACKAGE.rglob("*.py") if in_package(path))


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")


def test_no_module_is_over_the_line_limit() -> None:
    modules = source_modules()
    assert len(modules) > 50, "the module walk found too few modules"
    lines = {module_name(path): len(path.read_text(encoding="utf-8").splitlines()) for path in modules}
    over = {name: count for name, count in sorted(lines.items()) if count > MAX_LINES}
    listing = ", ".join(f"{name} ({count} lines)" for name, count in over.items())
    assert not [name for name in over if not pending(name)], f"modules over {MAX_LINES} lines: {listing}"
    if over:
        pytest.xfail(f"{PENDING_REASON}; over {MAX_LINES} lines: {listing}")


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return sorted(cycles)


def describe(graph: grimp.ImportGraph, cycle: list[str]) -> str:
    """One cycle as its imports, each with the importing line, so the message says where to cut."""
    members = set(cycle)
    edges = []
    for importer in cycle:
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & members):
            lines = sorted({detail["line_number"] for detail in graph.get_import_details(importer=importer,
                                                                                        imported=imported)})
            edges.append(f"{importer} -> {imported} (line {', '.join(map(str, lines))})")
    return "; ".join(edges)


def test_import_cycles_are_found() -> None:
    """The cycle finder itself: a two-module and a three-module cycle, and nothing in an acyclic chain."""
    graph = grimp.ImportGraph()
    for importer, imported in [("p.a", "p.b"), ("p.b", "p.a"), ("p.c", "p.d"), ("p.d", "p.e"), ("p.e", "p.c"),
                               ("p.x", "p.y"), ("p.y", "p.z"), ("p.a", "p.x")]:
        graph.add_import(importer=importer, imported=imported)
    assert import_cycles(graph) == [["p.a", "p.b"], ["p.c", "p.d", "p.e"]]


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("plugdock", cache_dir=None)
    assert len(graph.modules) > 50, "grimp found too few modules: is plugdock importable from src?"
    cycles = import_cycles(graph)
    listing = "\n".join(describe(graph, cycle) for cycle in cycles)
    outside = [cycle for cycle in cycles if not all(map(pending, cycle))]
    assert not outside, f"import cycles:\n{listing}"
    if cycles:
        pytest.xfail(f"{PENDING_REASON}; import cycles left in daemon/:\n{listing}")
