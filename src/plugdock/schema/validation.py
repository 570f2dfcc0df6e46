"""Turn pydantic errors into ``file:line:column: field: message`` problems.

Pydantic reports union branches and validator names inside error locations; we strip those so the
path matches the YAML the author wrote, keep the most relevant branch's errors, and add warnings
for unknown keys that look like typos of known ones.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from plugdock.schema.common import DifyModel
from plugdock.schema.problems import Problem
from plugdock.schema.yaml_source import Path, YamlDocument

M = TypeVar("M", bound=BaseModel)

_TYPE_MISMATCH = {
    "string_type",
    "list_type",
    "dict_type",
    "model_type",
    "model_attributes_type",
    "int_type",
    "float_type",
    "bool_type",
    "int_parsing",
    "float_parsing",
    "bool_parsing",
    "decimal_type",
    "decimal_parsing",
    "literal_error",
    "union_tag_invalid",
    "string_sub_type",
}

_TYPE_NAMES = {
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "int_parsing": "an integer",
    "float_parsing": "a number",
    "bool_parsing": "true or false",
    "decimal_type": "a number",
    "decimal_parsing": "a number",
}


_BRANCH_TAGS = ("str", "int", "float", "bool", "list", "dict", "decimal")


def _clean_loc(loc: tuple[Any, ...], data: Any) -> Path:
    """Drop pydantic's union-branch and validator tags from ``loc``, keeping the keys the author wrote."""
    cleaned: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(part, int) and isinstance(current, list) and 0 <= part < len(current):
            cleaned.append(part)
            current = current[part]
        elif isinstance(part, str) and isinstance(current, dict) and part in current:
            cleaned.append(part)
            current = current[part]
        elif isinstance(part, str) and (
            not last or "[" in part or part[:1].isupper() or part in _BRANCH_TAGS
        ):
            continue  # a union branch or discriminator tag, not a key the author wrote
        else:
            cleaned.append(part)  # a missing key: keep it so the message names it
            current = None
    return tuple(cleaned)


def _at(data: Any, path: Path) -> Any:
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def pydantic_problems(exc: ValidationError, doc: YamlDocument, prefix: Path = ()) -> list[Problem]:
    raw = _at(doc.data, prefix)
    entries: list[tuple[Path, dict[str, Any]]] = []
    for detail in exc.errors(include_url=False):
        entries.append((_clean_loc(tuple(detail["loc"]), raw), dict(detail)))
    # At a union point, a type mismatch of one branch is noise when another branch got further.
    kept = []
    for loc, err in entries:
        if err["type"] in _TYPE_MISMATCH and any(
            other_loc[: len(loc)] == loc and (len(other_loc) > len(loc) or other["type"] not in _TYPE_MISMATCH)
            for other_loc, other in entries
            if other is not err
        ):
            continue
        kept.append((loc, err))
    # Several pure type mismatches at one place collapse into one message listing what fits.
    by_loc: dict[Path, list[dict[str, Any]]] = {}
    for loc, err in kept:
        by_loc.setdefault(loc, []).append(err)
    problems = []
    for loc, errs in by_loc.items():
        full = (*prefix, *loc)
        mismatches = [e for e in errs if e["type"] in _TYPE_NAMES]
        others = [e for e in errs if e["type"] not in _TYPE_NAMES]
        if len(mismatches) > 1:
            wanted = sorted({_TYPE_NAMES[e["type"]] for e in mismatches})
            got = _yaml_type(mismatches[0].get("input"))
            problems.append(doc.problem(full, f"expected {' or '.join(wanted)}, got {got}"))
        else:
            others = errs
        for err in others:
            problems.append(doc.problem(full, _message(err)))
    return problems


_YAML_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),  # before int: bool is an int
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (dict, "a mapping"),
    (list, "a list"),
)


def _yaml_type(value: Any) -> str:
    """What the author wrote, in YAML words; by isinstance, so ``YamlInt``/``YamlFloat`` read as numbers."""
    if value is None:
        return "nothing (null)"
    return next((words for kind, words in _YAML_KINDS if isinstance(value, kind)), type(value).__name__)


def _message(err: dict[str, Any]) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required field is missing"
    if kind in _TYPE_NAMES:
        return f"expected {_TYPE_NAMES[kind]}, got {_yaml_type(err.get('input'))}"
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind == "string_pattern_mismatch":
        return f"{err.get('input')!r} does not match the pattern {err['ctx']['pattern']}"
    return msg[:1].lower() + msg[1:] if msg[:2] != msg[:2].upper() else msg


def typo_warnings(model: BaseModel, doc: YamlDocument, path: Path = ()) -> list[Problem]:
    """Unknown keys are kept, but one that is close to a known field name is probably a typo."""
    out: list[Problem] = [doc.problem((*path, *rel), message, severity="warning") for rel, message in
                          getattr(model, "notes", [])]
    known = set(type(model).model_fields)
    for key in model.__pydantic_extra__ or {}:
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        if close and close[0] not in model.model_fields_set:
            out.append(
                doc.problem((*path, key), f"unknown field (kept as is); did you mean {close[0]!r}?", severity="warning")
            )
    for name in model.model_fields_set:
        if name not in type(model).model_fields:
            continue
        out.extend(_walk(getattr(model, name), doc, (*path, name)))
    return out


def _walk(value: Any, doc: YamlDocument, path: Path) -> list[Problem]:
    if isinstance(value, BaseModel):
        return typo_warnings(value, doc, path)
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _walk(item, doc, (*path, i))]
    if isinstance(value, dict):
        return [p for k, item in value.items() for p in _walk(item, doc, (*path, k))]
    return []


def _booleans_as_text(exc: ValidationError, doc: YamlDocument, prefix: Path, data: Any) -> dict[Path, str]:
    """Booleans the model wanted as text, with their YAML source text (path relative to ``prefix``)."""
    found: dict[Path, str] = {}
    for detail in exc.errors(include_url=False):
        if detail["type"] != "string_type" or not isinstance(detail.get("input"), bool):
            continue
        loc = _clean_loc(tuple(detail["loc"]), data)
        text = doc.bool_texts.get((*prefix, *loc))
        if text is not None and isinstance(_at(data, loc), bool):
            found[loc] = text
    return found


def _put(data: Any, path: Path, value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def validate_document(model_cls: type[M], doc: YamlDocument, prefix: Path = ()) -> tuple[M | None, list[Problem]]:
    """Validate ``doc.data`` (or the part at ``prefix``) against ``model_cls``.

    A YAML boolean where text is expected is read as its source text, as yaml.v3 (the official daemon) fills a
    Go string, with a warning; the other problems are errors.
    """
    data = _at(doc.data, prefix)
    if not isinstance(data, dict):
        got = "an empty file" if data is None and not prefix else _yaml_type(data)
        return None, [doc.problem(prefix, f"expected a mapping, got {got}")]
    notes: list[Problem] = []
    while True:
        sink: list[tuple[int, Path, str]] = []
        token = DifyModel.note_sink.set(sink)
        try:
            model = model_cls.model_validate(data)
        except ValidationError as exc:
            texts = _booleans_as_text(exc, doc, prefix, data)
            if not texts:
                return None, notes + pydantic_problems(exc, doc, prefix) + _parts_notes(sink, data, doc, prefix)
            if not notes:
                data = copy.deepcopy(data)  # the document keeps what the author wrote
            for loc, text in texts.items():
                _put(data, loc, text)
                notes.append(doc.problem((*prefix, *loc), f"{text} is a YAML boolean where text is expected; read "
                                         f"as the text {text!r}, as the official daemon (yaml.v3) reads it; quote "
                                         "it to say so", severity="warning"))
            continue
        finally:
            DifyModel.note_sink.reset(token)
        return model, notes + typo_warnings(model, doc, prefix)


def _parts_notes(sink: list[tuple[int, Path, str]], data: Any, doc: YamlDocument,
                 prefix: Path) -> list[Problem]:
    """The warnings of the parts that validated in a document that did not: each part found by the mapping it
    was read from, so an error elsewhere in the file does not hide them."""
    where: dict[int, Path] = {}

    def index(value: Any, path: Path) -> None:
        if isinstance(value, dict):
            where.setdefault(id(value), path)
            for key, item in value.items():
                index(item, (*path, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                index(item, (*path, i))

    index(data, ())
    seen: dict[tuple[Path, str], Problem] = {}
    for source, rel, message in sink:
        if source in where:
            at = (*prefix, *where[source], *rel)
            seen.setdefault((at, message), doc.problem(at, message, severity="warning"))
    return list(seen.values())
