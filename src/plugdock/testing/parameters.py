"""Command-line values (``-p key=value``, ``-c key=value``) read by the type each field declares.

Dify sends a string parameter as a string whatever it looks like (``city=123`` is ``"123"``), a number as a
number, and so on; so the value is read by the declared type, never guessed, and what the host would refuse
(a missing required parameter or credential, a value outside a select's options) is refused before the call.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from plugdock.errors import PlugdockError

STRINGS = {"string", "secret-input", "text-input", "text", "dynamic-select", "date", "date-range", "select"}
NUMBERS = {"number", "float", "int"}
BOOLEANS = {"boolean", "checkbox"}
TRUE, FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


class InputError(PlugdockError):
    """A value given on the command line does not fit the field it names."""

    code = "invalid_input"


def only_provider(entries: Mapping[str, Any], what: str) -> str:
    """The plugin's one provider of a kind, for a call that names none (``--provider`` picks among several)."""
    if len(entries) != 1:
        raise PlugdockError(f"the plugin has {len(entries)} {what}s; pass --provider")
    return next(iter(entries))


@dataclass
class FieldSpec:
    """What the plugin declares for one parameter or credential."""

    name: str
    type: str
    required: bool = False
    default: Any = None
    options: list[str] | None = None


def _options(raw: Any) -> list[str] | None:
    if not raw:
        return None
    return [str(o.get("value") if isinstance(o, Mapping) else o) for o in raw]


def declared_fields(items: Iterable[Any] | Mapping[str, Any] | None) -> list[FieldSpec]:
    """Fields of a declaration's ``parameters``, ``credentials_for_provider`` (list or mapping), ``settings``,
    ``parameter_rules`` or ``credential_form_schemas`` (named by ``variable``)."""
    if items is None:
        return []
    if isinstance(items, Mapping):
        items = [{**(v or {}), "name": (v or {}).get("name") or k} for k, v in items.items()]
    fields = []
    for item in items:
        if isinstance(item, Mapping) and (item.get("name") or item.get("variable")):
            item = {**item, "name": item.get("name") or item.get("variable")}
            kind = str(item.get("type") or _template_type(item.get("use_template")) or "string")
            fields.append(FieldSpec(str(item["name"]), kind, bool(item.get("required")), item.get("default"),
                                    _options(item.get("options"))))
    return fields


def _template_type(name: Any) -> str | None:
    """The type of a model parameter rule's ``use_template`` (loaded only for rules that use one)."""
    if not name:
        return None
    from plugdock.schema.model import PARAMETER_TEMPLATES

    return PARAMETER_TEMPLATES.get(str(name), {}).get("type")


def typed_fields(typed: Any) -> list[FieldSpec]:
    """Fields of a typed tool (``@tool``): its signature, ``Literal`` values as options."""
    return [FieldSpec(p.name, p.type, p.required, p.default, p.options) for p in typed.parameters]


def coerce(field: FieldSpec, raw: str, what: str) -> Any:
    """``raw`` read as ``field`` declares it; ``what`` names the field in errors (``parameter "city"``)."""
    kind = field.type
    if kind in NUMBERS:
        try:
            number = float(raw) if kind == "float" else json.loads(raw)
        except ValueError:
            number = None
        if kind == "int" and not isinstance(number, int):
            raise InputError(f"{what} is an integer; {raw!r} is not one")
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise InputError(f"{what} is a number; {raw!r} is not one")
        value: Any = number
    elif kind in BOOLEANS:
        if raw.lower() not in TRUE | FALSE:
            raise InputError(f"{what} is a boolean; {raw!r} is not one (use true or false)")
        value = raw.lower() in TRUE
    elif kind in STRINGS:
        value = raw
    elif kind in ("array", "object"):
        want = list if kind == "array" else dict
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"{what} is an {kind}, given as JSON; {raw!r} is not JSON: {exc.msg} "
                             f"at column {exc.colno}") from None
        if not isinstance(value, want):
            example = "[1, 2]" if kind == "array" else '{"key": "value"}'
            raise InputError(f"{what} is an {kind}; {raw!r} is JSON {type(value).__name__}, not {kind} "
                             f"(e.g. {example})")
    else:  # files, selectors, any: JSON when it is JSON, else the text
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
    if field.options is not None and kind not in NUMBERS | BOOLEANS and str(value) not in field.options:
        raise InputError(f"{what} must be one of {', '.join(field.options)}; got {raw!r}")
    return value


def split_pairs(values: Iterable[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(f"{flag} {item!r} must look like key=value")
        out[key] = raw
    return out


def read_values(pairs: Mapping[str, str], fields: list[FieldSpec] | None, what: str, subject: str,
                flag: str) -> dict[str, Any]:
    """Values for ``fields`` from ``pairs``, with defaults filled and required ones checked.

    ``fields`` None means the declaration is unknown: values are JSON when they are JSON, else text."""
    if fields is None:
        return {key: coerce(FieldSpec(key, "any"), raw, f"{what} {key!r}") for key, raw in pairs.items()}
    known = {f.name: f for f in fields}
    unknown = [key for key in pairs if key not in known]
    if unknown:
        names = ", ".join(known) or "none"
        raise InputError(f"{subject} has no {what} {unknown[0]!r} (its {what}s: {names})")
    out = {key: coerce(known[key], raw, f"{subject}'s {what} {key!r}") for key, raw in pairs.items()}
    for field in fields:
        if field.name not in out and field.default is not None:
            out[field.name] = field.default
    missing = [f for f in fields if f.required and f.name not in out]
    if missing:
        names = ", ".join(f"{f.name} ({f.type})" for f in missing)
        raise InputError(f"{subject} needs {what} {names}: pass {flag} {missing[0].name}=VALUE")
    return out
