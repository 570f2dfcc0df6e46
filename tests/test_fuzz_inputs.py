"""Property tests on what arrives from outside: wire lines, package bytes (random and mutated), and
adversarial YAML. Each either parses or fails with the project's own error type, at a named limit."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugdock.errors import PlugdockError
from plugdock.packaging.archive import ArchiveSource, PackageArchive
from plugdock.packaging.build import build_package
from plugdock.protocol.codec import decode_line
from plugdock.schema import yaml_source
from plugdock.schema.plugin import load_plugin
from plugdock.schema.yaml_source import load_yaml

EXAMPLES = Path(__file__).parent.parent / "examples"
REAL_PACKAGE = build_package(EXAMPLES / "echo_tool").data


@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_wire_decoder_returns_an_object_or_a_value_error(line: bytes) -> None:
    try:
        assert isinstance(decode_line(line), dict)
    except ValueError as exc:
        assert str(exc)


@given(st.binary(max_size=2000))
def test_random_bytes_are_refused_as_a_package_error(data: bytes) -> None:
    with pytest.raises(PlugdockError):
        PackageArchive.open(data)


def read_package(data: bytes) -> None:
    """What the daemon does with an upload before it trusts it: open the zip, then load the plugin."""
    try:
        archive = PackageArchive.open(data, max_size=10 * 2**20)
    except PlugdockError:
        return
    try:
        result = load_plugin(ArchiveSource(archive))
    except PlugdockError:  # an entry that cannot be read: refused with its name
        return
    assert isinstance(result.problems, list)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(REAL_PACKAGE) - 1), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, len(REAL_PACKAGE)))
def test_mutated_real_packages_never_crash_the_reader(flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(REAL_PACKAGE)
    for offset, value in flips:
        data[offset] = value
    read_package(bytes(data))
    read_package(bytes(data[:cut]))


def package_with(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buffer.getvalue()


def test_yaml_alias_bomb_is_refused_at_the_node_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """9**12 nodes once expanded: the converter must stop at MAX_YAML_NODES + 1 and name the limit."""
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for index in range(1, 12):
        previous = chr(ord("a") + index - 1)
        name = chr(ord("a") + index)
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
    bomb = "\n".join(lines) + "\nversion: 0.0.1\n"
    visited = [0]
    convert = yaml_source._Converter.convert

    def counting(self: Any, node: Any, path: Any, depth: int = 0) -> Any:
        visited[0] += 1
        return convert(self, node, path, depth)

    monkeypatch.setattr(yaml_source._Converter, "convert", counting)
    doc = load_yaml(bomb, "manifest.yaml")
    assert visited[0] == yaml_source.MAX_YAML_NODES + 1  # the node that crossed the limit is the last one visited
    assert doc.data is None
    assert [p.message for p in doc.problems] == [
        f"YAML too large: more than {yaml_source.MAX_YAML_NODES} YAML nodes (alias expansion?)"]
    visited[0] = 0
    result = load_plugin(ArchiveSource(PackageArchive.open(package_with({"manifest.yaml": bomb.encode()}))))
    assert visited[0] == yaml_source.MAX_YAML_NODES + 1
    assert any(f"more than {yaml_source.MAX_YAML_NODES} YAML nodes" in str(p) and "manifest.yaml" in str(p)
               for p in result.problems)


def test_huge_manifest_is_refused_with_the_limit_named() -> None:
    huge = b"description:\n  en_US: " + os.urandom(5 * 2**19).hex().encode() + b"\n"  # incompressible
    result = load_plugin(ArchiveSource(PackageArchive.open(package_with({"manifest.yaml": huge}))))
    assert any("YAML limit" in str(p) and "manifest.yaml" in str(p) for p in result.problems)


def test_deeply_nested_yaml_is_refused_not_a_crash() -> None:
    deep = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    doc = load_yaml(deep, "tools/deep.yaml")
    assert doc.problems  # the parser's recursion ends in a named problem, not a RecursionError
