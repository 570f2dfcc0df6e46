"""Hostile packages: each is refused with a message naming the entry and the rule, nothing is written."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from plugdock.errors import PackageError, PackageLimitExceeded
from plugdock.packaging.archive import PackageArchive

MANIFEST = b"version: 0.0.1\n"


def zip_of(entries: list[tuple[str | zipfile.ZipInfo, bytes]], **kw: object) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def test_not_a_zip() -> None:
    with pytest.raises(PackageError, match="not a valid .difypkg"):
        PackageArchive.open(b"hello")


@pytest.mark.parametrize("name", ["../evil.py", "/etc/passwd", "a/../../evil", "C:/x.py", "a\\..\\b"])
def test_escaping_paths(name: str) -> None:
    with pytest.raises(PackageError, match="escapes the package"):
        PackageArchive.open(zip_of([("manifest.yaml", MANIFEST), (name, b"x")]))


def test_symlink_entry() -> None:
    info = zipfile.ZipInfo("link")
    info.external_attr = 0o120777 << 16
    with pytest.raises(PackageError, match="'link' is a symbolic link"):
        PackageArchive.open(zip_of([("manifest.yaml", MANIFEST), (info, b"/etc/passwd")]))


def test_duplicate_entry() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = zip_of([("manifest.yaml", MANIFEST), ("a.py", b"1"), ("a.py", b"2")])
    with pytest.raises(PackageError, match="'a.py' appears more than once"):
        PackageArchive.open(data)


def test_non_utf8_name() -> None:
    data = bytearray(zip_of([("manifest.yaml", MANIFEST), ("caf\u00e9.py", b"x")]))
    # rewrite the UTF-8 name bytes to Latin-1 and clear the UTF-8 flag in both headers
    utf8, latin = "caf\u00e9.py".encode(), "caf\u00e9.py".encode("latin-1") + b" "
    assert len(utf8) == len(latin)
    data = bytearray(bytes(data).replace(utf8, latin))
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        start = 0
        while (pos := data.find(sig, start)) != -1:
            flag_at = pos + (6 if sig == b"PK\x03\x04" else 8)
            data[flag_at] &= ~0x08 & 0xFF  # bit 11 is in the second byte: 0x800 >> 8
            data[flag_at + 1] &= ~0x08 & 0xFF
            start = pos + 4
    with pytest.raises(PackageError, match="not UTF-8"):
        PackageArchive.open(bytes(data))


def test_zip_bomb_ratio() -> None:
    with pytest.raises(PackageLimitExceeded, match="ratio limit"):
        PackageArchive.open(zip_of([("manifest.yaml", MANIFEST), ("bomb.bin", b"\0" * (8 * 1024 * 1024))]))


def test_total_uncompressed_limit() -> None:
    data = zip_of([("manifest.yaml", MANIFEST), ("a.bin", bytes(range(256)) * 100)])
    with pytest.raises(PackageLimitExceeded, match="uncompressed size exceeds the 10000-byte limit"):
        PackageArchive.open(data, max_size=10000)


def test_compressed_file_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.difypkg"
    path.write_bytes(b"x" * 2000)
    with pytest.raises(PackageLimitExceeded, match="package is 2000 bytes, over the 1000-byte limit"):
        PackageArchive.open(path, max_size=1000)


def test_declared_size_lies() -> None:
    data = bytearray(zip_of([("manifest.yaml", MANIFEST), ("a.txt", b"hello world")]))
    # shrink the declared uncompressed size of a.txt in the central directory
    cd = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)
    data[cd + 24 : cd + 28] = (3).to_bytes(4, "little")
    archive = PackageArchive.open(bytes(data))
    with pytest.raises(PackageError):
        archive.read("a.txt")


def test_missing_manifest() -> None:
    with pytest.raises(PackageError, match="manifest.yaml is missing"):
        PackageArchive.open(zip_of([("main.py", b"x")]))


def test_extract_stays_inside(tmp_path: Path) -> None:
    archive = PackageArchive.open(zip_of([("manifest.yaml", MANIFEST), ("pkg/a.py", b"x")]))
    archive.extract_to(tmp_path / "out")
    assert (tmp_path / "out" / "pkg" / "a.py").read_bytes() == b"x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
