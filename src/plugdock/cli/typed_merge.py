"""What ``plugdock generate`` writes into a tool YAML that already exists: the code's facts, merged in.

A typed tool's code says its name, parameters (names, order, types, required flags, defaults, select values,
input schemas) and output schema: those the YAML takes from the code. Texts the code states (an ``Args:`` line,
the docstring's summary, ``@tool(label=...)``) replace the English text, and ``@tool(form=[...])`` sets those
parameters' ``form: form``; the rest of what an author wrote by hand is kept: ``form: form``, translated labels
and descriptions, option labels, keys the code cannot express. ``generate --check`` and ``validate`` both call a
YAML stale exactly when this merge would change it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import yaml

from plugdock.sdk.typed import ParameterSpec, TypedTool, drift

_OWNED = ("name", "type", "required")  # a parameter's facts: always the code's
_SCHEMA_KEYS = ("default", "options", "input_schema")  # the code's when it has them, gone when it has none


def plain(value: Any) -> Any:
    """Plain dicts, lists and scalars: the YAML reader's own int/str subclasses neither copy nor dump as such."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def _text(existing: Any, code: str, stated: bool) -> Any:
    """An i18n mapping with the code's English when the code states one (other languages kept)."""
    if isinstance(existing, Mapping) and existing:
        return {**existing, "en_US": code} if stated else dict(existing)
    return {"en_US": code}


def _parameter(spec: ParameterSpec, old: Mapping[str, Any] | None) -> dict[str, Any]:
    fresh = spec.declaration()
    if not isinstance(old, Mapping):
        return fresh
    out = copy.deepcopy(dict(old))
    for key in _OWNED:
        out[key] = fresh[key]
    for key in _SCHEMA_KEYS:
        if key not in fresh:
            out.pop(key, None)
        elif key == "options":
            labels = {str(o.get("value")): o for o in old.get("options") or [] if isinstance(o, Mapping)}
            out[key] = [copy.deepcopy(dict(labels[o["value"]])) if o["value"] in labels else o for o in fresh[key]]
        else:
            out[key] = fresh[key]
    stated = bool(spec.description)
    if spec.form == "form":  # the code says so; otherwise a hand-written form stays
        out["form"] = "form"
    else:
        out.setdefault("form", fresh["form"])
    out["label"] = _text(old.get("label"), fresh["label"]["en_US"], False)
    out["human_description"] = _text(old.get("human_description"), fresh["human_description"]["en_US"], stated)
    if stated or not old.get("llm_description"):
        out["llm_description"] = fresh["llm_description"]
    return out


def merged_declaration(typed: TypedTool, existing: Mapping[str, Any] | None, source: str) -> dict[str, Any]:
    """The tool YAML's data after ``plugdock generate``: ``typed.declaration(source)`` merged into ``existing``."""
    fresh = typed.declaration(source)
    if not isinstance(existing, Mapping) or not existing:
        return fresh
    existing = plain(existing)
    out = copy.deepcopy(dict(existing))
    identity = dict(out.get("identity") or {}) if isinstance(out.get("identity"), Mapping) else {}
    identity["name"] = typed.name
    if typed.author and not identity.get("author"):
        identity["author"] = typed.author
    identity["label"] = _text(identity.get("label"), typed.label,
                              typed.label != typed.name.replace("_", " ").title())
    out["identity"] = identity
    stated = typed.description != typed.name
    description = dict(out.get("description") or {}) if isinstance(out.get("description"), Mapping) else {}
    description["human"] = _text(description.get("human"), typed.description, stated)
    if stated or not description.get("llm"):
        description["llm"] = typed.description
    out["description"] = description
    old = {str(p.get("name")): p for p in existing.get("parameters") or [] if isinstance(p, Mapping)}
    out["parameters"] = [_parameter(spec, old.get(spec.name)) for spec in typed.parameters]
    if "output_schema" in fresh:
        out["output_schema"] = fresh["output_schema"]
    else:
        out.pop("output_schema", None)
    extra = dict(out.get("extra") or {}) if isinstance(out.get("extra"), Mapping) else {}
    python = dict(extra.get("python") or {}) if isinstance(extra.get("python"), Mapping) else {}
    python["source"] = source
    extra["python"] = python
    out["extra"] = extra
    return out


def _changed(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return [p for key in sorted(set(old) | set(new), key=str)
                for p in _changed(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [p for i, (a, b) in enumerate(zip(old, new, strict=True)) for p in _changed(a, b, f"{path}[{i}]")]
    return [] if old == new else [path or "the file"]


def staleness(typed: TypedTool, existing: Mapping[str, Any], source: str) -> list[str]:
    """Why ``generate`` would change this YAML (empty: up to date); ``validate`` and ``generate --check`` both
    use it, so they agree."""
    existing = plain(existing)
    merged = merged_declaration(typed, existing, source)
    if merged == existing:
        return []
    reasons = drift(typed, existing)
    return reasons or [f"{path} differs from the code" for path in _changed(existing, merged)[:5]]


def with_tools_listed(text: str, rels: list[str]) -> str:
    """A provider YAML's text with ``rels`` appended to its ``tools:`` list, everything else kept.

    A block list gains one ``- path`` line per file after its last item, in its own indentation, so comments and
    formatting stay; any other shape (no key, ``tools: []``, a flow list) is rewritten through the YAML data."""
    if not rels:
        return text
    root = yaml.compose(text) if text.strip() else None
    value = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "tools"), None) \
        if isinstance(root, yaml.MappingNode) else None
    if isinstance(value, yaml.SequenceNode) and value.value and not value.flow_style:
        lines = text.splitlines(keepends=True)
        first = lines[value.value[0].start_mark.line]
        indent = first[:len(first) - len(first.lstrip())]
        after = value.value[-1].end_mark.line + (value.value[-1].end_mark.column > 0)
        if after > 0 and not lines[after - 1].endswith("\n"):
            lines[after - 1] += "\n"
        return "".join(lines[:after] + [f"{indent}- {rel}\n" for rel in rels] + lines[after:])
    if isinstance(root, yaml.MappingNode) and value is None:
        return text + ("" if text.endswith("\n") else "\n") + "tools:\n" + "".join(f"  - {rel}\n" for rel in rels)
    data = plain(yaml.safe_load(text) or {})
    tools = data.get("tools") if isinstance(data.get("tools"), list) else []
    data["tools"] = [*tools, *rels]
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
