"""Building packages and bundles in process, at their limits: what goes in, the bytes, the messages.

The bundle and ``uv export`` paths were otherwise only exercised through subprocesses (the daemon and
CLI tests), which mutation testing cannot see; here each branch of ``plugdock.packaging.build`` runs
in this process, with exact messages, command lines and zip headers.
"""

from __future__ import annotations

import io
import random
import shutil
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from plugdock.errors import PackageError, PackageLimitExceeded, ValidationFailed
from plugdock.packaging import build
from plugdock.packaging.archive import PackageArchive
from plugdock.packaging.build import (
    build_bundle,
    build_package,
    collect_files,
    is_bundle,
)
from plugdock.packaging.checksum import package_checksum
from plugdock.packaging.ignore import ignore_filter
from plugdock.packaging.ship_runtime import ship_runtime
from plugdock.packaging.uv import uv_binary
from plugdock.packaging.zipfiles import FIXED_TIME, write_zip
from plugdock.schema.plugin import LoadedPlugin

EXAMPLES = Path(__file__).parent.parent / "examples"
UV_ARGS = ["export", "--frozen", "--format", "requirements.txt", "--no-dev", "--no-emit-project",
           "--no-hashes", "--no-header", "--no-annotate"]


def entries(data: bytes) -> list[zipfile.ZipInfo]:
    return zipfile.ZipFile(io.BytesIO(data)).infolist()


def raw_member(data: bytes, info: zipfile.ZipInfo) -> bytes:
    """The stored (compressed) bytes of one entry, read from its local header."""
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    return data[start: start + info.compress_size]


def deflate6(content: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(content) + compressor.flush()


def tree_size(root: Path) -> int:
    """What the limit counts: every file of the package, the plugdock-sdk wheel it carries included."""
    return sum(len(content) for _, content in ship_runtime(collect_files(root)))


# -- write_zip: the same input, the same bytes -----------------------------------------------------------

def test_every_entry_has_fixed_time_permissions_system_and_deflate() -> None:
    data = write_zip([("b.txt", b"bee" * 50), ("a/x.py", b"print(1)\n"), ("empty", b"")], comment=b"sig")
    infos = entries(data)
    assert [i.filename for i in infos] == ["b.txt", "a/x.py", "empty"]  # the given order, not sorted
    for info in infos:
        assert info.date_time == FIXED_TIME == (1980, 1, 1, 0, 0, 0)
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.create_system == 3
        assert info.external_attr == 0o100644 << 16 == 0x81A40000
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.comment == b"sig"
    assert [archive.read(i) for i in infos] == [b"bee" * 50, b"print(1)\n", b""]


def test_entries_are_deflated_at_level_6() -> None:
    # a text where levels 6 and 7 give different streams, so the level itself is pinned
    rng = random.Random(1)
    words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 8))) for _ in range(300)]
    content = " ".join(rng.choice(words) for _ in range(20000)).encode()
    level7 = zlib.compressobj(7, zlib.DEFLATED, -15)
    assert deflate6(content) != level7.compress(content) + level7.flush()
    data = write_zip([("text.txt", content)])
    assert raw_member(data, entries(data)[0]) == deflate6(content)


def test_no_comment_by_default_and_the_bytes_repeat() -> None:
    files = [("a", b"1"), ("b", b"22")]
    data = write_zip(files)
    assert zipfile.ZipFile(io.BytesIO(data)).comment == b""
    assert write_zip(list(files)) == data


def test_progress_reports_bytes_done_of_the_total_after_each_entry() -> None:
    calls: list[tuple[int, int]] = []
    write_zip([("a", b"abc"), ("b", b""), ("c", b"defghij")], progress=lambda done, total: calls.append((done, total)))
    assert calls == [(3, 10), (3, 10), (10, 10)]


def test_no_progress_callback_is_fine() -> None:
    assert [i.filename for i in entries(write_zip([("a", b"x")], progress=None))] == ["a"]


# -- collect_files: the ignore file, symlinks ------------------------------------------------------------

def test_collect_files_applies_the_ignore_file_and_reads_contents(tmp_path: Path) -> None:
    (tmp_path / ".difyignore").write_text("*.log\nbuild/\n")
    (tmp_path / "a.py").write_bytes(b"print('a')\n")
    (tmp_path / "x.log").write_text("noise")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "out.py").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_bytes(b"\x00\x01")
    assert collect_files(tmp_path) == [(".difyignore", b"*.log\nbuild/\n"), ("a.py", b"print('a')\n"),
                                       ("sub/b.txt", b"\x00\x01")]


def test_a_link_inside_is_packed_as_its_target_and_one_outside_refused_by_name_unless_ignored(
    tmp_path: Path,
) -> None:
    plugin = tmp_path / "plugin"
    (plugin / "sub").mkdir(parents=True)
    (plugin / "real.txt").write_text("x")
    (plugin / "sub" / "link.txt").symlink_to(plugin / "real.txt")
    assert collect_files(plugin) == [("real.txt", b"x"), ("sub/link.txt", b"x")]  # as the official packager
    (tmp_path / "outside.txt").write_text("secret")
    (plugin / "sub" / "out.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(PackageError) as refused:
        collect_files(plugin)
    assert type(refused.value) is PackageError
    assert str(refused.value).startswith(f"sub/out.txt: symbolic link to {str(tmp_path / 'outside.txt')!r}")
    (plugin / ".difyignore").write_text("sub/out.txt\n")
    assert [name for name, _ in collect_files(plugin)] == [".difyignore", "real.txt", "sub/link.txt"]


# -- build_package ---------------------------------------------------------------------------------------

def test_a_package_is_the_sorted_tree_with_its_identifier(tool_plugin: Path) -> None:
    built = build_package(tool_plugin)
    files = ship_runtime(sorted(collect_files(tool_plugin)))  # requirements name plugdock: its wheel goes in
    assert built.files == [name for name, _ in files] and "wheels/plugdock_sdk-0.1.0-py3-none-any.whl" in built.files
    assert built.files[:5] == [".difyignore", "PRIVACY.md", "README.md", "_assets/icon.svg", "main.py"]
    assert [i.filename for i in entries(built.data)] == built.files
    assert PackageArchive.open(built.data).read_all() == files
    assert built.data == write_zip(files)
    ident = built.identifier
    assert (ident.author, ident.name, ident.version) == ("tester", "demo", "0.0.1")
    assert ident.checksum == package_checksum(files)
    assert isinstance(built.plugin, LoadedPlugin) and built.plugin.manifest is not None
    assert built.plugin.manifest.name == "demo" and built.plugin.ok


def test_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for root in (tmp_path / "file", tmp_path / "absent"):
        with pytest.raises(PackageError) as refused:
            build_package(root)
        assert str(refused.value) == f"{root}: not a directory"
    with pytest.raises(PackageError, match="not a directory"):
        build_package(str(tmp_path / "file"))


def test_an_invalid_plugin_counts_its_errors(tool_plugin: Path) -> None:
    (tool_plugin / "main.py").unlink()
    with pytest.raises(ValidationFailed) as failed:
        build_package(tool_plugin)
    errors = [p for p in failed.value.problems if p.is_error]
    assert errors and any("main.py" in str(p) for p in errors)
    assert str(failed.value) == f"{tool_plugin}: the plugin has {len(errors)} error(s)"


def test_validation_sees_the_tree_after_the_ignore_file(tool_plugin: Path) -> None:
    (tool_plugin / ".difyignore").write_text("main.py\n")
    with pytest.raises(ValidationFailed) as failed:
        build_package(tool_plugin)
    assert any("main.py" in str(p) for p in failed.value.problems)


def test_ignored_files_stay_out_of_the_package(tool_plugin: Path) -> None:
    (tool_plugin / ".difyignore").write_text("*.log\n")
    (tool_plugin / "debug.log").write_text("secret")
    built = build_package(tool_plugin)
    assert "debug.log" not in built.files and "main.py" in built.files


def test_the_size_limit_counts_every_file_and_names_the_five_largest(tool_plugin: Path) -> None:
    for i, size in enumerate([9000, 9400, 9100, 9500, 9300, 9200]):
        (tool_plugin / f"blob{i}.bin").write_bytes(b"\0" * size)
    (tool_plugin / "requirements.txt").write_text("werkzeug>=3.0\n")  # no shipped wheel among the largest
    total = tree_size(tool_plugin)
    assert len(build_package(tool_plugin, max_size=total).data) > 0  # exactly at the limit
    with pytest.raises(PackageLimitExceeded) as refused:
        build_package(tool_plugin, max_size=total - 1)
    assert str(refused.value) == (
        f"plugin is {total} bytes uncompressed, over the {total - 1}-byte limit; largest files: "
        "blob3.bin (9500 bytes); blob1.bin (9400 bytes); blob4.bin (9300 bytes); blob5.bin (9200 bytes); "
        "blob2.bin (9100 bytes)"
    )


def test_the_default_limit_is_the_official_50_mib(tool_plugin: Path) -> None:
    (tool_plugin / "pad.bin").write_bytes(b"\0" * (52428800 - tree_size(tool_plugin)))
    assert len(build_package(tool_plugin).data) < 1_000_000  # exactly 50 MiB of input fits
    with (tool_plugin / "pad.bin").open("ab") as pad:
        pad.write(b"\0")
    with pytest.raises(PackageLimitExceeded, match="plugin is 52428801 bytes uncompressed, over the 52428800-byte"):
        build_package(tool_plugin)


def test_progress_from_build_package_ends_at_the_total(tool_plugin: Path) -> None:
    calls: list[tuple[int, int]] = []
    built = build_package(tool_plugin, progress=lambda done, total: calls.append((done, total)))
    total = tree_size(tool_plugin)
    assert len(calls) == len(built.files)
    assert calls[-1] == (total, total) and all(t == total for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


# -- the uv export path ----------------------------------------------------------------------------------

@pytest.fixture
def uv_plugin(tool_plugin: Path) -> Path:
    """A plugin that declares its dependencies with pyproject.toml and uv.lock only. Its code imports no SDK:
    a lock that installs nothing is then complete (code importing plugdock would be refused at package)."""
    (tool_plugin / "main.py").write_text('print("no SDK needed")\n')
    (tool_plugin / "provider" / "demo.py").write_text("class DemoProvider:\n    pass\n")
    (tool_plugin / "tools" / "demo.py").write_text("class DemoTool:\n    pass\n")
    (tool_plugin / "requirements.txt").unlink()
    (tool_plugin / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "0.0.1"\n'
                                                'requires-python = ">=3.11"\ndependencies = []\n')
    (tool_plugin / "uv.lock").write_text("version = 1\n")
    return tool_plugin


class FakeRun:
    def __init__(self, returncode: int, stdout: bytes = b"", stderr: bytes = b"") -> None:
        self.result = (returncode, stdout, stderr)
        self.calls: list[tuple[list[str], dict[str, Any]]] = []

    def __call__(self, cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        self.calls.append((cmd, kwargs))
        code, out, err = self.result
        return subprocess.CompletedProcess(cmd, code, stdout=out, stderr=err)


def test_uv_export_makes_requirements_txt(uv_plugin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRun(0, stdout=b"httpx==0.27.0\n", stderr=b"Resolved 2 packages")
    monkeypatch.setattr(build, "uv_binary", lambda: "/opt/uv/bin/uv")
    monkeypatch.setattr(subprocess, "run", fake)
    built = build_package(uv_plugin)
    assert [cmd for cmd, _ in fake.calls] == [["/opt/uv/bin/uv", *UV_ARGS]]
    # run on a copy of the dependency files (plugdock may have pointed them at the wheel the package carries)
    assert fake.calls[0][1]["cwd"] != uv_plugin and fake.calls[0][1]["capture_output"] is True
    files = dict(PackageArchive.open(built.data).read_all())
    assert files["requirements.txt"] == b"httpx==0.27.0\n"
    assert built.files == sorted(built.files) and "uv.lock" in built.files and "pyproject.toml" in built.files
    assert built.identifier.checksum == package_checksum(files.items())


def test_uv_export_failure_is_reported_with_its_stderr(uv_plugin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "uv_binary", lambda: "/opt/uv/bin/uv")
    for code in (1, 2):
        monkeypatch.setattr(subprocess, "run", FakeRun(code, stdout=b"x", stderr=b"\n error: bad lock \xff\n"))
        with pytest.raises(PackageError) as failed:
            build_package(uv_plugin)
        assert str(failed.value) == "uv export failed: error: bad lock \ufffd"


def test_without_uv_the_message_says_what_to_do(uv_plugin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "uv_binary", lambda: None)
    with pytest.raises(PackageError) as failed:
        build_package(uv_plugin)
    assert str(failed.value) == (
        "the plugin has pyproject.toml and uv.lock but no requirements.txt; install uv (pip install uv) so "
        "plugdock can export one, or add requirements.txt yourself"
    )


@pytest.mark.parametrize("keep", [("requirements.txt", "pyproject.toml", "uv.lock"), ("pyproject.toml",),
                                  ("uv.lock",), ("requirements.txt", "uv.lock")])
def test_uv_runs_only_for_pyproject_and_lock_without_requirements(
    uv_plugin: Path, keep: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("pyproject.toml", "uv.lock"):
        if name not in keep:
            (uv_plugin / name).unlink()
    if "requirements.txt" in keep:
        (uv_plugin / "requirements.txt").write_text("own\n")

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("uv must not run")

    monkeypatch.setattr(build, "uv_binary", never)
    monkeypatch.setattr(subprocess, "run", never)
    built = build_package(uv_plugin)
    assert sorted(keep) == [n for n in built.files if n in ("requirements.txt", "pyproject.toml", "uv.lock")]
    if "requirements.txt" in keep:
        assert dict(PackageArchive.open(built.data).read_all())["requirements.txt"] == b"own\n"


@pytest.mark.skipif(uv_binary() is None, reason="uv is not installed")
def test_real_uv_exports_a_project_without_a_dev_group(uv_plugin: Path) -> None:
    """`uv init` makes no dev group; `--no-group dev` would make uv refuse such a project."""
    uv = uv_binary()
    assert uv is not None
    (uv_plugin / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "0.0.1"\n'
                                              'requires-python = ">=3.11"\ndependencies = []\n')
    (uv_plugin / "uv.lock").unlink()
    locked = subprocess.run([uv, "lock", "--offline", "--quiet"], cwd=uv_plugin, capture_output=True, check=False)
    assert locked.returncode == 0, locked.stderr
    built = build_package(uv_plugin)
    assert "requirements.txt" in built.files
    assert dict(PackageArchive.open(built.data).read_all())["requirements.txt"].strip() == b""


# -- bundles ---------------------------------------------------------------------------------------------

@pytest.fixture
def bundle_root(tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    shutil.copytree(EXAMPLES / "starter_bundle", root)
    (root / "_assets" / "echo.difypkg").write_bytes(b"PK-not-read")
    (root / "notes.log").write_text("left out")
    (root / ".difyignore").write_text((root / ".difyignore").read_text() + "*.log\n")
    return root


def test_is_bundle(tmp_path: Path, bundle_root: Path, tool_plugin: Path) -> None:
    assert is_bundle(bundle_root) is True
    assert is_bundle(tool_plugin) is False
    assert is_bundle(tmp_path / "nothing-here") is False
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "manifest.yaml").write_text("- type: bundle\n")
    assert is_bundle(tmp_path / "list") is False
    (tmp_path / "list" / "manifest.yaml").write_text("type: [bundle\n")
    assert is_bundle(tmp_path / "list") is False


def test_a_bundle_is_its_sorted_tree_at_the_size_limit(bundle_root: Path) -> None:
    files = sorted(collect_files(bundle_root))
    names = [n for n, _ in files]
    assert names == [".difyignore", "README.md", "_assets/echo.difypkg", "_assets/icon.svg", "manifest.yaml"]
    total = tree_size(bundle_root)
    data = build_bundle(bundle_root, max_size=total)
    assert data == write_zip(files) == build_bundle(str(bundle_root))
    assert [i.filename for i in entries(data)] == names
    with pytest.raises(PackageLimitExceeded) as refused:
        build_bundle(bundle_root, max_size=total - 1)
    assert str(refused.value) == f"bundle is {total} bytes uncompressed, over the {total - 1}-byte limit"


def test_a_bundle_with_errors_is_not_built(bundle_root: Path) -> None:
    (bundle_root / ".difyignore").write_text("_assets/icon.svg\n")  # validation sees the tree without it
    with pytest.raises(ValidationFailed) as failed:
        build_bundle(bundle_root)
    assert str(failed.value) == f"{bundle_root}: the bundle has errors"
    assert [p.message for p in failed.value.problems if p.is_error] == ["icon 'icon.svg' is not in _assets/"]


def test_a_folder_without_a_bundle_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as failed:
        build_bundle(tmp_path)
    assert str(failed.value) == f"{tmp_path}: the bundle has errors"
    assert [p.message for p in failed.value.problems] == ["manifest.yaml is missing"]


def test_ignore_filter_is_what_the_builder_uses(tool_plugin: Path) -> None:
    ignored = ignore_filter(tool_plugin)
    assert ignored("__pycache__/") and ignored("x.pyc") and not ignored("main.py")


# -- ignore.py: the file is UTF-8 whatever the locale -----------------------------------------------------

def test_the_ignore_file_is_read_as_utf8_under_another_locale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = Path.read_text

    def latin1_locale(self: Path, encoding: str | None = None, errors: str | None = None) -> str:
        return original(self, encoding=encoding if encoding is not None else "latin-1", errors=errors)

    monkeypatch.setattr(Path, "read_text", latin1_locale)
    (tmp_path / ".difyignore").write_bytes("café.txt\n".encode())
    ignored = ignore_filter(tmp_path)
    assert ignored("café.txt") and not ignored("cafÃ©.txt")
