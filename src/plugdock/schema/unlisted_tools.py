"""Tools no provider lists: a ``tools/*.yaml`` declaring a tool, or a ``@tool`` function, that the official
daemon never loads because no tool provider's ``tools:`` names it, so invoking it says 'Tool not found'.

Checked are the files ``plugdock generate`` reads and writes (``tools/*.yaml`` with an ``identity``, the
``@tool`` functions of ``tools/*.py``); helper YAML without an identity is not. Code is read as a syntax
tree, never imported: the loader never runs plugin code.
"""

from __future__ import annotations

import ast
import posixpath

from plugdock.schema.problems import Problem
from plugdock.schema.sources import FileSource
from plugdock.schema.tool import ToolDeclaration
from plugdock.schema.yaml_source import load_yaml

TYPED_MODULE = "plugdock.sdk.typed"  # a Python file that names it may define @tool typed tools


def unlisted_tool_problems(source: FileSource, all_files: set[str], tool_lists: dict[str, set[str]],
                           loaded: set[str], tools: list[ToolDeclaration]) -> list[Problem]:
    """Warnings for the tool files of ``source`` that none of ``tool_lists`` (provider file -> tool files it
    lists) names; ``loaded`` are the files the loader read, ``tools`` the tools it found. Nothing without a
    tool provider: such a plugin has no ``tools:`` to add a file to."""
    if not tool_lists:
        return []
    listed: set[str] = set().union(*tool_lists.values())
    where = " or ".join(sorted(tool_lists))
    declared = {t.identity.name for t in tools}
    problems: list[Problem] = []
    for rel in sorted(f for f in all_files if posixpath.dirname(f) == "tools"):
        if rel.endswith((".yaml", ".yml")) and rel not in listed and rel not in loaded:
            data = load_yaml(source.read(rel) or b"", rel).data
            identity = data.get("identity") if isinstance(data, dict) else None
            if not isinstance(identity, dict) or "tools" in data:
                continue
            declared.add(str(identity.get("name")))
            problems.append(Problem(rel, 1, 1, "", f"no provider lists this tool declaration, so the official "
                                    f"daemon ignores it (invoking {identity.get('name')!r} says 'Tool not found'); "
                                    f"add `- {rel}` under `tools:` in {where}", "warning"))
    for rel in sorted(f for f in all_files if posixpath.dirname(f) == "tools" and f.endswith(".py")):
        code = source.read(rel) or b""
        for name in typed_tool_names(code) if TYPED_MODULE.encode() in code else []:
            if name not in declared:
                problems.append(Problem(rel, 1, 1, "", f"the @tool {name!r} has no tool YAML that {where} lists, "
                                        f"so the official daemon does not know it; `plugdock generate` writes "
                                        f"tools/{name}.yaml and lists it", "warning"))
    return problems


def typed_tool_names(code: bytes | str) -> list[str]:
    """The tool names of a module's top-level ``@tool`` functions, read without importing it (the loader never
    runs plugin code): ``@tool``, ``@tool(...)``, ``@tool(name=...)``, under any alias ``plugdock.sdk.typed``'s
    ``tool`` or the module itself is imported as."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return []
    names: set[str] = set()  # what ``tool`` is called here
    modules: set[str] = set()  # what ``plugdock.sdk.typed`` is called here
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == TYPED_MODULE:
            names |= {a.asname or a.name for a in node.names if a.name == "tool"}
        elif isinstance(node, ast.ImportFrom) and node.module == "plugdock.sdk":
            modules |= {a.asname or a.name for a in node.names if a.name == "typed"}
        elif isinstance(node, ast.Import):
            modules |= {a.asname for a in node.names if a.name == TYPED_MODULE and a.asname}
    found = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for dec in node.decorator_list:
            target = dec.func if isinstance(dec, ast.Call) else dec
            if not ((isinstance(target, ast.Name) and target.id in names)
                    or (isinstance(target, ast.Attribute) and target.attr == "tool"
                        and isinstance(target.value, ast.Name) and target.value.id in modules)):
                continue
            given = None
            if isinstance(dec, ast.Call):
                given = dec.args[0] if dec.args else next((k.value for k in dec.keywords if k.arg == "name"), None)
            literal = given.value if isinstance(given, ast.Constant) and isinstance(given.value, str) else None
            found.append(literal or node.name)
    return found
