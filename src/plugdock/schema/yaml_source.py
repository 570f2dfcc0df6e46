"""YAML loading that remembers where every value came from.

Validation errors must point at ``file:line:column``; PyYAML's node tree carries marks, so we
compose nodes and convert them ourselves, recording the mark of each value by its path. The
scalar rules follow YAML 1.2's core schema as Go's yaml.v3 (the official daemon) reads it:
``yes``/``no`` and unquoted timestamps stay strings, ``012`` is decimal.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from plugdock.schema.problems import Location, Problem

MAX_YAML_BYTES = 4 * 1024 * 1024
MAX_YAML_NODES = 200_000
MAX_YAML_DEPTH = 64

Path = tuple[str | int, ...]


class _Resolver(yaml.resolver.Resolver):
    """YAML 1.2 core-schema implicit types (no YAML 1.1 yes/no, sexagesimals or timestamps)."""

    yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012 - PyYAML's class-level registry


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_Resolver.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])


class _Composer(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer, _Resolver):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _Resolver.__init__(self)


@dataclass
class YamlDocument:
    """A parsed YAML file: its data, where each value sits, and the problems met while reading."""

    file: str
    data: Any
    positions: dict[Path, Location] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # The source text of every boolean scalar, by path: yaml.v3 fills a Go string with a scalar's text, so a
    # ``false`` in a text field is the text "false" to the official daemon.
    bool_texts: dict[Path, str] = field(default_factory=dict)

    def locate(self, path: Path) -> Location:
        """Position of the value at ``path``, or of its nearest present ancestor."""
        probe = tuple(path)
        while probe:
            if probe in self.positions:
                return self.positions[probe]
            probe = probe[:-1]
        return self.positions.get((), Location(1, 1))

    def problem(self, path: Path, message: str, *, severity: str = "error", locate: Path | None = None) -> Problem:
        loc = self.locate(locate if locate is not None else path)
        return Problem(self.file, loc.line, loc.column, format_path(path), message, severity)


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _Converter:
    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.count = 0

    def fail(self, node: yaml.Node, message: str, severity: str = "error") -> None:
        m = node.start_mark
        self.doc.problems.append(Problem(self.doc.file, m.line + 1, m.column + 1, "", message, severity))

    def convert(self, node: yaml.Node, path: Path, depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_YAML_NODES:
            raise _TooBig(f"more than {MAX_YAML_NODES} YAML nodes (alias expansion?)")
        if depth > MAX_YAML_DEPTH:
            raise _TooBig(f"nesting deeper than {MAX_YAML_DEPTH} levels")
        self.doc.positions[path] = Location(node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            if node.tag == "tag:yaml.org,2002:bool":
                self.doc.bool_texts[path] = node.value
            return self.scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path, depth)
        self.fail(node, "unsupported YAML node")  # pragma: no cover - composer yields only the three kinds
        return None

    def mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged = self.convert(value_node, path, depth + 1)
                sources = merged if isinstance(merged, list) else [merged]
                for source in sources:
                    if isinstance(source, dict):
                        for k, v in source.items():
                            result.setdefault(k, v)
                    else:
                        self.fail(value_node, "a merge key (<<) needs a mapping or a list of mappings")
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, "mapping keys must be plain scalars")
                continue
            key = self.scalar(key_node)
            if not isinstance(key, str | int | float | bool) and key is not None:
                self.fail(key_node, "mapping keys must be plain scalars")
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in seen and path[:1] == ("extra",):
                # under ``extra`` only ``python`` is read; the daemon's struct decoding never sees the rest
                # and the SDK's YAML keeps the last value (the official github_trigger has such files)
                self.fail(key_node, f"duplicate key {key!r} (first defined at line {seen[key]}); the last one "
                          "wins", severity="warning")
            elif key in seen:
                self.fail(key_node, f"duplicate key {key!r} (first defined at line {seen[key]})")
            seen[key] = key_node.start_mark.line + 1
            result[key] = self.convert(value_node, (*path, key), depth + 1)
        return result

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag, value = node.tag, node.value
        if tag in ("tag:yaml.org,2002:str", "!"):
            return value
        if tag == "tag:yaml.org,2002:null":
            return None
        if tag == "tag:yaml.org,2002:bool":
            return value.lower() == "true"
        if tag == "tag:yaml.org,2002:int":
            try:
                if value.startswith("0o"):
                    return YamlInt(int(value[2:], 8), value)
                if value.startswith("0x"):
                    return YamlInt(int(value[2:], 16), value)
                return YamlInt(int(value), value)
            except ValueError:
                self.fail(node, f"{value!r} is not an integer")
                return value
        if tag == "tag:yaml.org,2002:float":
            low = value.lower()
            if low.endswith(".inf"):
                return -math.inf if low.startswith("-") else math.inf
            if low == ".nan":
                return math.nan
            try:
                return YamlFloat(float(value), value)
            except ValueError:
                self.fail(node, f"{value!r} is not a number")
                return value
        self.fail(node, f"unsupported YAML tag {tag!r}")
        return value


class _TooBig(Exception):
    pass


class YamlInt(int):
    """An integer read from YAML that remembers its text, so ``08`` or ``1_000`` stays as written in a string field.

    Go's yaml.v3 (the official daemon) fills a string field with a scalar's source text; pydantic turns numbers
    into strings with ``str()``, so returning the source text here gives the same result.
    """

    raw: str

    def __new__(cls, value: int, raw: str) -> YamlInt:
        obj = super().__new__(cls, value)
        obj.raw = raw
        return obj

    def __str__(self) -> str:
        return self.raw


class YamlFloat(float):
    """A float that remembers its YAML text: ``3.10`` in a string field stays ``"3.10"``, not ``"3.1"``."""

    raw: str

    def __new__(cls, value: float, raw: str) -> YamlFloat:
        obj = super().__new__(cls, value)
        obj.raw = raw
        return obj

    def __str__(self) -> str:
        return self.raw


def load_yaml(text: str | bytes, file: str) -> YamlDocument:
    """Parse one YAML document; never raises for bad input, the problems are on the result."""
    doc = YamlDocument(file=file, data=None)
    if isinstance(text, bytes):
        if len(text) > MAX_YAML_BYTES:
            doc.problems.append(
                Problem(file, 1, 1, "", f"file is {len(text)} bytes, over the {MAX_YAML_BYTES}-byte YAML limit")
            )
            return doc
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            doc.problems.append(Problem(file, 1, 1, "", f"file is not valid UTF-8 (byte {exc.start})"))
            return doc
    if len(text) > MAX_YAML_BYTES:
        doc.problems.append(Problem(file, 1, 1, "", f"file is over the {MAX_YAML_BYTES}-byte YAML limit"))
        return doc
    if text.startswith("\ufeff"):
        text = text[1:]
    composer = None
    try:
        composer = _Composer(text)
        node = composer.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        detail = " ".join(part for part in (exc.context, exc.problem) if part)
        doc.problems.append(Problem(file, line, col, "", f"invalid YAML: {detail}"))
        return doc
    except yaml.YAMLError as exc:
        doc.problems.append(Problem(file, 1, 1, "", f"invalid YAML: {exc}"))
        return doc
    except RecursionError:
        doc.problems.append(Problem(file, 1, 1, "", "invalid YAML: nested too deeply for the parser"))
        return doc
    finally:
        if composer is not None:
            composer.dispose()
    if node is None:
        doc.positions[()] = Location(1, 1)
        return doc
    try:
        doc.data = _Converter(doc).convert(node, ())
    except _TooBig as exc:
        doc.data = None
        doc.problems.append(Problem(file, 1, 1, "", f"YAML too large: {exc}"))
    except RecursionError:
        doc.data = None
        doc.problems.append(Problem(file, 1, 1, "", "YAML nested too deeply"))
    return doc
