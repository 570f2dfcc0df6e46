"""Package reading at each limit and on both sides of it: package size, total size, entry count, inflation
ratio, name rules (NUL, ``./``, ``//``, UTF-8 flag), directory entries, and reads whose sizes lie."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from plugdock.errors import PackageError, PackageLimitExceeded
from plugdock.packaging.archive import MAX_ENTRIES, MAX_RATIO, RATIO_FLOOR, ArchiveSource, PackageArchive

MANIFEST = b"version: 0.0.1\n"


def zip_of(entries: list[tuple[str, bytes]], comment: bytes = b"", method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, data in entries:
            zf.writestr(name, data)
        zf.comment = comment
    return buf.getvalue()


def headers(data: bytes | bytearray) -> list[tuple[int, bool]]:
    """(offset, is_central) of every local and central header."""
    out = []
    for sig, central in ((b"PK\x03\x04", False), (b"PK\x01\x02", True)):
        start = 0
        while (pos := data.find(sig, start)) != -1:
            out.append((pos, central))
            start = pos + 4
    return out


def forge_central(data: bytes, name: str, *, size: int | None = None, compressed: int | None = None,
                  flag_and: int = 0xFFFF, flag_or: int = 0) -> bytes:
    """Rewrite the central-directory sizes and both headers' flags of the entry ``name`` (bytes as written)."""
    out = bytearray(data)
    raw = name.encode()
    for pos, central in headers(out):
        name_len = int.from_bytes(out[pos + (28 if central else 26):][:2], "little")
        name_at = pos + (46 if central else 30)
        if bytes(out[name_at:name_at + name_len]) != raw:
            continue
        flag_at = pos + (8 if central else 6)
        flags = (int.from_bytes(out[flag_at:flag_at + 2], "little") & flag_and) | flag_or
        out[flag_at:flag_at + 2] = flags.to_bytes(2, "little")
        if central and compressed is not None:
            out[pos + 20:pos + 24] = compressed.to_bytes(4, "little")
        if central and size is not None:
            out[pos + 24:pos + 28] = size.to_bytes(4, "little")
    return bytes(out)


def replace_name_bytes(data: bytes, old: bytes, new: bytes) -> bytes:
    assert len(old) == len(new) and data.count(old) == 2  # the local and the central header
    return data.replace(old, new)


# -- package size: as a file and as bytes --------------------------------------------------------------

def test_a_package_of_exactly_the_limit_opens_and_one_byte_more_does_not(tmp_path: Path) -> None:
    data = zip_of([("manifest.yaml", MANIFEST)])
    assert PackageArchive.open(data, max_size=len(data)).max_size == len(data)
    with pytest.raises(PackageLimitExceeded) as refused:
        PackageArchive.open(data, max_size=len(data) - 1)
    assert str(refused.value) == f"package: package is {len(data)} bytes, over the {len(data) - 1}-byte limit"
    path = tmp_path / "p.difypkg"
    path.write_bytes(data)
    archive = PackageArchive.open(path, max_size=len(data))
    assert (archive.name, archive.data, archive.files()) == (str(path), data, ["manifest.yaml"])
    with pytest.raises(PackageLimitExceeded) as refused:
        PackageArchive.open(path, max_size=len(data) - 1)
    assert str(refused.value) == f"{path}: package is {len(data)} bytes, over the {len(data) - 1}-byte limit"


def test_an_unreadable_package_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(PackageError) as refused:
        PackageArchive.open(tmp_path / "missing.difypkg")
    assert str(refused.value) == f"{tmp_path / 'missing.difypkg'}: cannot read package: No such file or directory"


def test_errors_of_a_package_given_as_a_path_name_the_path(tmp_path: Path) -> None:
    path = tmp_path / "p.difypkg"
    path.write_bytes(zip_of([("main.py", b"x")]))
    with pytest.raises(PackageError) as refused:
        PackageArchive.open(path)
    assert str(refused.value) == f"{path}: manifest.yaml is missing from the package root"


# -- total inflated size --------------------------------------------------------------------------------

def test_a_total_of_exactly_the_limit_opens_and_one_byte_more_does_not() -> None:
    limit = 10_000
    filler = limit - len(MANIFEST) - 4000
    fits = zip_of([("manifest.yaml", MANIFEST), ("a.bin", b"\0" * 4000), ("b.bin", b"\0" * filler)])
    assert sum(e.size for e in PackageArchive.open(fits, max_size=limit).entries) == limit
    over = zip_of([("manifest.yaml", MANIFEST), ("a.bin", b"\0" * 4000), ("b.bin", b"\0" * (filler + 1))])
    with pytest.raises(PackageLimitExceeded) as refused:
        PackageArchive.open(over, max_size=limit)
    assert str(refused.value) == f"package: uncompressed size exceeds the {limit}-byte limit (at entry 'b.bin')"


def test_the_total_adds_up_every_entry() -> None:
    """Each entry is under the limit on its own; together they are over it."""
    data = zip_of([("manifest.yaml", MANIFEST), ("a.bin", b"\0" * 600), ("b.bin", b"\0" * 600)])
    with pytest.raises(PackageLimitExceeded, match="at entry 'b.bin'"):
        PackageArchive.open(data, max_size=1000)


# -- entry count -----------------------------------------------------------------------------------------

def test_exactly_max_entries_open_and_one_more_is_refused() -> None:
    names = [f"f{n}" for n in range(MAX_ENTRIES - 1)]
    fits = zip_of([("manifest.yaml", MANIFEST), *((n, b"") for n in names)], method=zipfile.ZIP_STORED)
    assert len(PackageArchive.open(fits).entries) == MAX_ENTRIES == 10_000
    over = zip_of([("manifest.yaml", MANIFEST), *((n, b"") for n in [*names, "one-more"])],
                  method=zipfile.ZIP_STORED)
    with pytest.raises(PackageLimitExceeded) as refused:
        PackageArchive.open(over)
    assert str(refused.value) == f"package: {MAX_ENTRIES + 1} entries, over the limit of {MAX_ENTRIES}"


# -- inflation ratio (200:1, for entries over 1 MiB) ----------------------------------------------------

def ratio_package(size: int, compressed: int) -> bytes:
    """A package whose entry ``r.bin`` declares these sizes (nothing is read at open)."""
    return forge_central(zip_of([("manifest.yaml", MANIFEST), ("r.bin", os.urandom(64))]), "r.bin",
                         size=size, compressed=compressed)


def test_an_entry_of_exactly_one_mib_may_inflate_any_amount() -> None:
    assert PackageArchive.open(ratio_package(RATIO_FLOOR, 1)).entries[1].size == RATIO_FLOOR == 1024 * 1024
    with pytest.raises(PackageLimitExceeded) as refused:
        PackageArchive.open(ratio_package(RATIO_FLOOR + 1, 1))
    assert str(refused.value) == (f"package: entry 'r.bin' inflates {RATIO_FLOOR + 1}:1, over the {MAX_RATIO}:1 ratio "
                                  "limit (zip bomb?)")


def test_small_entries_that_compress_very_well_are_fine() -> None:
    data = zip_of([("manifest.yaml", MANIFEST), ("zeros.bin", b"\0" * (512 * 1024))])
    archive = PackageArchive.open(data)
    assert archive.entries[1].size > 300 * archive.entries[1].compressed  # far over 200:1, but under 1 MiB


def test_exactly_200_to_1_above_one_mib_opens_and_one_byte_more_is_refused() -> None:
    compressed = 6000  # 200 x 6000 = 1.2 MB, above the 1 MiB floor
    archive = PackageArchive.open(ratio_package(MAX_RATIO * compressed, compressed))
    assert (archive.entries[1].size, archive.entries[1].compressed) == (MAX_RATIO * compressed, compressed)
    with pytest.raises(PackageLimitExceeded) as refused:
        PackageArchive.open(ratio_package(MAX_RATIO * compressed + 1, compressed))
    assert "entry 'r.bin' inflates 200:1, over the 200:1 ratio limit (zip bomb?)" in str(refused.value)


def test_an_entry_claiming_zero_compressed_bytes_counts_as_one() -> None:
    with pytest.raises(PackageLimitExceeded, match=f"inflates {2 * RATIO_FLOOR}:1, over"):
        PackageArchive.open(ratio_package(2 * RATIO_FLOOR, 0))


# -- names ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["./manifest.yaml", "a//b.py", "a/./b.py", "a/.", "//a.py"])
def test_empty_and_dot_segments_are_refused(name: str) -> None:
    """``./manifest.yaml`` would otherwise be a second manifest that the duplicate check cannot see."""
    with pytest.raises(PackageError) as refused:
        PackageArchive.open(zip_of([("manifest.yaml", MANIFEST), (name, b"x")]))
    assert str(refused.value) == f"package: entry {name!r} escapes the package (absolute path or '..')"


def test_names_with_spaces_and_dots_inside_segments_are_fine() -> None:
    names = ["my tool.py", "a.b/c..d.py", ".hidden", "dir/.env.example"]
    assert PackageArchive.open(zip_of([("manifest.yaml", MANIFEST), *((n, b"x") for n in names)])).files()[1:] == names


def test_a_nul_in_a_name_without_the_utf8_flag_is_refused() -> None:
    data = replace_name_bytes(zip_of([("manifest.yaml", MANIFEST), ("a#b.py", b"x")]), b"a#b.py", b"a\0b.py")
    with pytest.raises(PackageError) as refused:
        PackageArchive.open(data)
    assert str(refused.value) == "package: entry 'a\\x00b.py' has a NUL byte in its name"


def test_a_nul_in_a_utf8_flagged_name_is_refused_not_cut_there() -> None:
    """zipfile cuts ``filename`` at a NUL (``main.py\\0x`` reads as ``main.py``): the name as stored is checked."""
    data = replace_name_bytes(zip_of([("manifest.yaml", MANIFEST), ("caf\u00e9#x.py", b"x")]),
                              "caf\u00e9#x.py".encode(), "caf\u00e9\0x.py".encode())
    with pytest.raises(PackageError) as refused:
        PackageArchive.open(data)
    assert str(refused.value) == "package: entry 'caf\u00e9\\x00x.py' has a NUL byte in its name"


def unflagged_utf8(name: str, extra_flags: int = 0) -> bytes:
    """A package whose entry ``name`` is stored in UTF-8 without the UTF-8 flag, as some packagers write it."""
    return forge_central(zip_of([("manifest.yaml", MANIFEST), (name, b"content")]), name, flag_and=~0x800 & 0xFFFF,
                         flag_or=extra_flags)


def test_utf8_names_without_the_flag_are_read_as_utf8() -> None:
    archive = PackageArchive.open(unflagged_utf8("caf\u00e9/\u00fcber.py"))
    assert archive.files() == ["manifest.yaml", "caf\u00e9/\u00fcber.py"]
    assert archive.read("caf\u00e9/\u00fcber.py") == b"content"
    assert archive.read_all()[1] == ("caf\u00e9/\u00fcber.py", b"content")


def test_only_bit_11_marks_a_name_as_utf8() -> None:
    """Bit 0 (encryption) set and bit 11 clear: the name is still decoded from the stored bytes."""
    archive = PackageArchive.open(unflagged_utf8("caf\u00e9.py", extra_flags=0x1))
    assert archive.files()[1] == "caf\u00e9.py"
    with pytest.raises(PackageError, match=r"^package: entry 'caf\u00e9.py' cannot be read: .*password required"):
        archive.read("caf\u00e9.py")  # found by its decoded name; zipfile refuses to read an encrypted entry


# -- directory entries ------------------------------------------------------------------------------------

def test_directory_entries_are_skipped_and_the_entries_after_them_still_checked() -> None:
    ok = zip_of([("pkg/", b""), ("manifest.yaml", MANIFEST), ("pkg/sub/", b""), ("pkg/sub/a.py", b"a")])
    archive = PackageArchive.open(ok)
    assert archive.files() == ["manifest.yaml", "pkg/sub/a.py"]
    assert archive.read_all() == [("manifest.yaml", MANIFEST), ("pkg/sub/a.py", b"a")]
    with pytest.raises(PackageError, match="escapes the package"):
        PackageArchive.open(zip_of([("manifest.yaml", MANIFEST), ("pkg/", b""), ("../evil.py", b"x")]))


# -- what was opened, and reads -------------------------------------------------------------------------

def test_entries_comment_and_reads_are_those_of_the_zip() -> None:
    data = zip_of([("manifest.yaml", MANIFEST), ("a.py", b"A" * 500), ("b.py", b"B")], comment=b"note")
    archive = PackageArchive.open(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert [(e.name, e.size, e.compressed) for e in archive.entries] == [
            (i.filename, i.file_size, i.compress_size) for i in zf.infolist()]
    assert archive.comment == b"note" and archive.name == "package"
    assert [archive.read(n) for n in ("b.py", "a.py", "manifest.yaml")] == [b"B", b"A" * 500, MANIFEST]
    assert archive.read("b.py") == b"B"  # the second read comes from the cache
    assert archive.read("missing.py") is None
    source = ArchiveSource(archive)
    assert (source.name, source.archive, source.files()) == ("package", archive, ["manifest.yaml", "a.py", "b.py"])
    assert source.read("a.py") == b"A" * 500 and source.read("nope") is None


def test_an_entry_declaring_more_bytes_than_it_holds_is_refused_by_both_reads() -> None:
    data = forge_central(zip_of([("manifest.yaml", MANIFEST), ("a.txt", b"hello world")]), "a.txt", size=20)
    archive = PackageArchive.open(data)
    with pytest.raises(PackageError) as refused:
        archive.read("a.txt")
    assert str(refused.value) == "package: entry 'a.txt' declares 20 bytes but holds 11"
    with pytest.raises(PackageError) as refused:
        archive.read_all()
    assert str(refused.value) == "package: entry 'a.txt' declares 20 bytes but holds 11"


def test_an_entry_declaring_fewer_bytes_fails_its_checksum_in_both_reads() -> None:
    data = forge_central(zip_of([("manifest.yaml", MANIFEST), ("a.txt", b"hello world")]), "a.txt", size=3)
    archive = PackageArchive.open(data)
    with pytest.raises(PackageError, match=r"^package: entry 'a.txt' cannot be read: Bad CRC-32"):
        archive.read("a.txt")
    with pytest.raises(PackageError, match=r"^package: entry 'a.txt' cannot be read: Bad CRC-32"):
        archive.read_all()


# -- extraction -------------------------------------------------------------------------------------------

def test_extract_makes_nested_folders_and_accepts_an_existing_target(tmp_path: Path) -> None:
    archive = PackageArchive.open(zip_of([("manifest.yaml", MANIFEST), ("a/b/c/d.py", b"d")]))
    target = tmp_path / "new" / "deeper" / "out"
    archive.extract_to(target)
    archive.extract_to(target)  # again, into the folder that now exists
    assert (target / "a" / "b" / "c" / "d.py").read_bytes() == b"d"


def test_extract_refuses_to_follow_a_link_out_of_the_target(tmp_path: Path) -> None:
    target, outside = tmp_path / "out", tmp_path / "outside"
    target.mkdir()
    outside.mkdir()
    (target / "pkg").symlink_to(outside)
    archive = PackageArchive.open(zip_of([("manifest.yaml", MANIFEST), ("pkg/a.py", b"x")]))
    with pytest.raises(PackageError) as refused:
        archive.extract_to(target)
    assert str(refused.value) == f"package: entry 'pkg/a.py' would be written outside {target.resolve()}"
    assert list(outside.iterdir()) == []


# -- what goes in: the ignore file and the identifier ---------------------------------------------------

def test_without_an_ignore_file_nothing_is_left_out(tmp_path: Path) -> None:
    from plugdock.packaging.ignore import ignore_filter

    assert [ignore_filter(tmp_path)(p) for p in ("a.py", ".env", "dir/", "x.log")] == [False] * 4


def test_an_ignore_file_with_bytes_that_are_not_utf8_still_applies(tmp_path: Path) -> None:
    from plugdock.packaging.ignore import ignore_filter

    (tmp_path / ".difyignore").write_bytes(b"\xff\xfe junk\n# a comment\n\n*.log\n")
    (tmp_path / ".gitignore").write_bytes(b"*.py\n")  # .difyignore wins
    ignored = ignore_filter(tmp_path)
    assert (ignored("x.log"), ignored("a.py"), ignored("# a comment")) == (True, False, False)


def test_a_bad_identifier_is_named_with_the_expected_form() -> None:
    from plugdock.packaging.identifier import InvalidIdentifier, PluginIdentifier

    with pytest.raises(InvalidIdentifier) as refused:
        PluginIdentifier.parse("a/b:1.0.0@xyz")
    assert str(refused.value) == ("'a/b:1.0.0@xyz' is not a plugin unique identifier "
                                  "(expected author/name:1.2.3@<32-64 hex checksum>)")
