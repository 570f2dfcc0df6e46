"""Building packages: deterministic bytes, .difyignore, size limit, checksum and identifiers."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from plugdock.errors import PackageError, PackageLimitExceeded, ValidationFailed
from plugdock.packaging.archive import PackageArchive
from plugdock.packaging.build import build_package, collect_files
from plugdock.packaging.checksum import package_checksum
from plugdock.packaging.identifier import InvalidIdentifier, PluginIdentifier

from conftest import make_plugin


def test_package_layout_and_identifier(tool_plugin: Path) -> None:
    built = build_package(tool_plugin)
    names = zipfile.ZipFile(io.BytesIO(built.data)).namelist()
    assert names == sorted(names)
    assert "manifest.yaml" in names and "tools/demo.py" in names
    assert not any(n.endswith("/") for n in names)  # files only, like the official packager
    assert str(built.identifier).startswith("tester/demo:0.0.1@")
    assert built.identifier.checksum == package_checksum(PackageArchive.open(built.data).read_all())


def test_same_input_gives_same_bytes(tmp_path: Path) -> None:
    a = build_package(make_plugin(tmp_path / "a")).data
    b = build_package(make_plugin(tmp_path / "b")).data
    # created_at differs per second at most; pin it so only the tree decides
    for root in (tmp_path / "a", tmp_path / "b"):
        manifest = root / "manifest.yaml"
        lines = [
            ln if not ln.startswith("created_at") else 'created_at: "2024-01-01T00:00:00Z"'
            for ln in manifest.read_text().splitlines()
        ]
        manifest.write_text("\n".join(lines) + "\n")
    a = build_package(tmp_path / "a").data
    b = build_package(tmp_path / "b").data
    assert a == b


def test_difyignore_excludes_files(tool_plugin: Path) -> None:
    (tool_plugin / "notes.log").write_text("secret")
    (tool_plugin / "__pycache__").mkdir()
    (tool_plugin / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (tool_plugin / ".difyignore").write_text("*.log\n__pycache__/\n")
    names = build_package(tool_plugin).files
    assert "notes.log" not in names and not any("__pycache__" in n for n in names)


def test_gitignore_used_when_no_difyignore(tool_plugin: Path) -> None:
    (tool_plugin / ".difyignore").unlink()
    (tool_plugin / ".gitignore").write_text("secret.txt\n")
    (tool_plugin / "secret.txt").write_text("x")
    assert "secret.txt" not in build_package(tool_plugin).files


def test_size_limit_names_the_biggest_files(tool_plugin: Path) -> None:
    (tool_plugin / "big.bin").write_bytes(b"\0" * 20000)
    (tool_plugin / "requirements.txt").write_text("werkzeug>=3.0\n")  # no plugdock: no shipped wheel to list first
    with pytest.raises(
        PackageLimitExceeded, match=r"over the 10000-byte limit; largest files: big.bin \(20000 bytes\)"
    ):
        build_package(tool_plugin, max_size=10000)


def test_invalid_plugin_is_not_packaged(tool_plugin: Path) -> None:
    (tool_plugin / "main.py").unlink()
    with pytest.raises(ValidationFailed) as info:
        build_package(tool_plugin)
    assert any("main.py" in str(p) for p in info.value.problems)


def test_a_link_out_of_the_plugin_is_refused_naming_its_target(tool_plugin: Path, tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("x")
    (tool_plugin / "link.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(ValidationFailed) as failed:
        build_package(tool_plugin)
    (problem,) = [p for p in failed.value.problems if p.is_error]
    assert problem.file == "link.txt" and f"symbolic link to '{tmp_path / 'outside.txt'}'" in problem.message
    assert "leaves the plugin" in problem.message
    with pytest.raises(PackageError, match="link.txt: symbolic link to .*outside.txt'?, which leaves the plugin"):
        collect_files(tool_plugin)


def test_a_link_to_a_file_inside_is_packed_as_its_target(tool_plugin: Path) -> None:
    (tool_plugin / "docs").mkdir()
    (tool_plugin / "docs" / "README.md").symlink_to("../README.md")
    built = build_package(tool_plugin)
    archive = PackageArchive.open(built.data)
    assert archive.read("docs/README.md") == (tool_plugin / "README.md").read_bytes()


def test_checksum_matches_the_official_algorithm() -> None:
    files = [("b.txt", b"bee"), ("a/x.py", b"print(1)")]
    expected = hashlib.sha256()
    for name, content in sorted(files):
        expected.update(hashlib.sha256(name.encode()).digest() + hashlib.sha256(content).digest())
    assert package_checksum(files) == expected.hexdigest()
    assert package_checksum(reversed(files)) == expected.hexdigest()


def test_identifier_parsing() -> None:
    ident = PluginIdentifier.parse("langgenius/openai:0.0.1@" + "a" * 64)
    assert (ident.author, ident.name, ident.version, ident.plugin_id) == (
        "langgenius",
        "openai",
        "0.0.1",
        "langgenius/openai",
    )
    assert str(ident) == "langgenius/openai:0.0.1@" + "a" * 64
    assert PluginIdentifier.parse("x:1.2@" + "0" * 32).author == ""
    for bad in ("openai", "a/b:1@" + "a" * 64, "A/b:1.0.0@" + "a" * 64, "a/b:1.0.0@xyz"):
        with pytest.raises(InvalidIdentifier):
            PluginIdentifier.parse(bad)
