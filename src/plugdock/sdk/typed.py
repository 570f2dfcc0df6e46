"""Typed tools: a type-annotated function is the tool, and its signature is the schema.

    @tool(description="Add two numbers")
    def add(a: int, b: int = 0) -> int:
        '''Args:
            a: the first number
            b: the second number
        '''
        return a + b

``add.declaration()`` is the tool YAML (parameters, types, required, descriptions, output schema) and
``add.tool_class`` the ``Tool`` the runtime serves; ``plugdock generate`` writes the YAML and
``plugdock validate`` reports where code and YAML drift apart. Beyond the official SDK.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from plugdock.sdk.file import File
from plugdock.sdk.messages import InvokeMessage, ToolInvokeMessage
from plugdock.sdk.tool import Tool

_SCALARS: dict[Any, str] = {str: "string", int: "number", float: "number", bool: "boolean"}
_JSON_TYPES: dict[str, str] = {"string": "string", "number": "number", "boolean": "boolean"}


class TypedToolError(TypeError):
    """A typed tool's signature cannot be turned into a tool declaration."""


@dataclass
class ParameterSpec:
    name: str
    type: str
    required: bool
    description: str
    default: Any = None
    options: list[str] | None = None
    json_schema: dict[str, Any] | None = None
    form: str = "llm"  # "form": the user sets it in the workflow form (``@tool(form=[...])``), not the LLM

    def declaration(self) -> dict[str, Any]:
        label = self.name.replace("_", " ").title()
        data: dict[str, Any] = {
            "name": self.name, "type": self.type, "required": self.required, "form": self.form,
            "label": {"en_US": label}, "human_description": {"en_US": self.description or label},
            "llm_description": self.description or label,
        }
        if not self.required and self.default is not None:
            data["default"] = self.default
        if self.options:
            data["options"] = [{"value": o, "label": {"en_US": o}} for o in self.options]
        if self.json_schema:
            data["input_schema"] = self.json_schema
        return data


def _docstring_args(doc: str) -> tuple[str, dict[str, str]]:
    """Summary line and ``Args:`` descriptions of a Google-style docstring."""
    lines = inspect.cleandoc(doc or "").splitlines()
    summary = lines[0].strip() if lines and not lines[0].strip().endswith(":") else ""
    args: dict[str, str] = {}
    in_args = False
    current = None
    for line in lines:
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
            continue
        if in_args and re.match(r"^[A-Z][a-z]+:$", stripped):
            break
        if in_args:
            match = re.match(r"^(\w+)(?:\s*\([^)]*\))?:\s*(.*)$", stripped)
            if match:
                current = match.group(1)
                args[current] = match.group(2)
            elif current and stripped:
                args[current] += " " + stripped
    return summary, args


def _parameter_type(name: str, annotation: Any) -> tuple[str, list[str] | None, dict[str, Any] | None]:
    """The tool parameter type for a Python annotation (plus select options or an object's JSON Schema)."""
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _parameter_type(name, members[0])
        raise TypedToolError(f"parameter {name!r}: unions of several types are not supported; use one type")
    if origin is Literal:
        values = [str(v) for v in get_args(annotation)]
        return "select", values, None
    if annotation in _SCALARS:
        return _SCALARS[annotation], None, None
    if annotation is File:
        return "file", None, None
    if origin in (list, tuple, set) or annotation in (list, tuple, set):
        items = get_args(annotation)
        if items and items[0] is File:
            return "files", None, None
        return "array", None, None
    if origin in (dict, Mapping) or annotation in (dict, Mapping):
        return "object", None, None
    schema = getattr(annotation, "model_json_schema", None)
    if callable(schema):
        return "object", None, schema()
    if annotation is Any or annotation is inspect.Parameter.empty:
        return "string", None, None
    raise TypedToolError(f"parameter {name!r}: type {annotation!r} has no tool parameter equivalent")


def _output_schema(annotation: Any) -> dict[str, Any] | None:
    if annotation in (inspect.Signature.empty, None, type(None)) or get_origin(annotation) in (Generator, Iterable):
        return None
    schema = getattr(annotation, "model_json_schema", None)
    if callable(schema):
        return dict(schema())
    if annotation in _SCALARS:
        return {"type": "object", "properties": {"result": {"type": _JSON_TYPES[_SCALARS[annotation]]}}}
    return None


class TypedTool:
    """The function, its declaration, and a ``Tool`` subclass that serves it."""

    def __init__(self, fn: Callable[..., Any], name: str, description: str | None, author: str,
                 label: str | None, form: Iterable[str] = ()) -> None:
        self.fn = fn
        self.name = name
        summary, arg_docs = _docstring_args(fn.__doc__ or "")
        self.description = description or summary or name
        self.author = author
        self.label = label or name.replace("_", " ").title()
        hints = typing.get_type_hints(fn)
        self.parameters: list[ParameterSpec] = []
        self.wants_tool = False
        for param in inspect.signature(fn).parameters.values():
            if param.name in ("tool", "self"):
                self.wants_tool = True
                continue
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise TypedToolError(f"{fn.__name__}: *args and **kwargs cannot be tool parameters")
            kind, options, schema = _parameter_type(param.name, hints.get(param.name, param.annotation))
            required = param.default is inspect.Parameter.empty
            self.parameters.append(ParameterSpec(param.name, kind, required, arg_docs.get(param.name, ""),
                                                 None if required else param.default, options, schema,
                                                 "form" if param.name in form else "llm"))
        unknown = sorted(set(form) - {p.name for p in self.parameters})
        if unknown:
            raise TypedToolError(f"{fn.__name__}: form= names {', '.join(map(repr, unknown))}, which "
                                 f"{'is' if len(unknown) == 1 else 'are'} not a parameter")
        self.output_schema = _output_schema(hints.get("return", inspect.Signature.empty))
        self.tool_class = self._make_class()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def declaration(self, source: str | None = None) -> dict[str, Any]:
        """The tool YAML as data; ``source`` fills ``extra.python.source``."""
        data: dict[str, Any] = {
            "identity": {"name": self.name, "author": self.author, "label": {"en_US": self.label}},
            "description": {"human": {"en_US": self.description}, "llm": self.description},
            "parameters": [p.declaration() for p in self.parameters],
        }
        if self.output_schema:
            data["output_schema"] = self.output_schema
        if source:
            data["extra"] = {"python": {"source": source}}
        return data

    def _make_class(self) -> type[Tool]:
        typed = self

        def _invoke(self: Tool, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
            kwargs = {p.name: tool_parameters[p.name] for p in typed.parameters if p.name in tool_parameters}
            missing = [p.name for p in typed.parameters if p.required and p.name not in kwargs]
            if missing:
                raise ValueError(f"missing required parameter(s): {', '.join(missing)}")
            if typed.wants_tool:
                kwargs["tool"] = self
            result = typed.fn(**kwargs)
            yield from _as_messages(self, result)

        cls = type(f"{self.name.title().replace('_', '')}Tool", (Tool,), {"_invoke": _invoke,
                                                                         "__module__": self.fn.__module__})
        return cls


def _as_messages(tool: Tool, result: Any) -> Generator[ToolInvokeMessage, None, None]:
    if result is None:
        return
    if isinstance(result, ToolInvokeMessage):
        yield result
    elif isinstance(result, InvokeMessage):
        yield ToolInvokeMessage(type=result.type, message=result.message, meta=result.meta)
    elif isinstance(result, str):
        yield tool.create_text_message(result)
    elif isinstance(result, bytes):
        yield tool.create_blob_message(result)
    elif isinstance(result, bool | int | float):
        yield tool.create_json_message({"result": result})
    elif hasattr(result, "model_dump"):
        yield tool.create_json_message(result.model_dump(mode="json"))
    elif isinstance(result, Mapping | list):
        yield tool.create_json_message(result)
    elif inspect.isgenerator(result) or isinstance(result, Iterable):
        for item in result:
            yield from _as_messages(tool, item)
    else:
        yield tool.create_text_message(str(result))


def tool(name: str | Callable[..., Any] | None = None, *, description: str | None = None, author: str = "",
         label: str | None = None, form: Iterable[str] = ()) -> Any:
    """Declare a tool from a typed function: ``@tool`` or ``@tool(name=..., description=...)``.

    ``form=["units"]``: those parameters are ``form: form`` (the user sets them in the workflow form); the others
    are ``form: llm`` (the model fills them)."""
    if callable(name):
        return TypedTool(name, name.__name__, description, author, label)
    chosen = (form,) if isinstance(form, str) else tuple(form)  # form="units" means one parameter, not five

    def wrap(fn: Callable[..., Any]) -> TypedTool:
        return TypedTool(fn, name or fn.__name__, description, author, label, chosen)

    return wrap


def typed_tools(module: Any) -> list[TypedTool]:
    return [v for v in vars(module).values() if isinstance(v, TypedTool)]


def drift(typed: TypedTool, declared: Mapping[str, Any]) -> list[str]:
    """Where a tool YAML disagrees with its typed function (names, types, required flags)."""
    problems = []
    yaml_params = {str(p.get("name")): p for p in declared.get("parameters") or [] if isinstance(p, Mapping)}
    code_params = {p.name: p for p in typed.parameters}
    for name in sorted(set(code_params) - set(yaml_params)):
        problems.append(f"parameter {name!r} is in the code but not in the YAML")
    for name in sorted(set(yaml_params) - set(code_params)):
        problems.append(f"parameter {name!r} is in the YAML but not in the code")
    for name in sorted(set(code_params) & set(yaml_params)):
        code, yaml = code_params[name], yaml_params[name]
        if yaml.get("type") != code.type:
            problems.append(f"parameter {name!r} is {yaml.get('type')!r} in the YAML but {code.type!r} in the code")
        if bool(yaml.get("required", False)) != code.required:
            problems.append(f"parameter {name!r} is {'required' if code.required else 'optional'} in the code but "
                            f"not in the YAML")
    identity = declared.get("identity") or {}
    if identity.get("name") != typed.name:
        problems.append(f"tool name is {identity.get('name')!r} in the YAML but {typed.name!r} in the code")
    return problems
