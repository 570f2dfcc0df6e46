"""Reading a ``.difypkg`` (a zip) without trusting it.

Every entry is checked before anything is read: paths must stay inside the package, links and
duplicates are refused, names must be UTF-8, and sizes are capped both as declared and as actually
inflated (so a zip bomb stops at the limit, not at the end of the disk).
"""

from __future__ import annotations

import io
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from plugdock.errors import PackageError, PackageLimitExceeded
from plugdock.schema.plugin import is_safe_relative

DEFAULT_MAX_SIZE = 52428800  # MAX_PLUGIN_PACKAGE_SIZE in the official daemon
MAX_ENTRIES = 10_000
MAX_RATIO = 200  # inflated / compressed, for entries over 1 MiB
RATIO_FLOOR = 1024 * 1024
VERIFICATION_FILE = ".verification.dify.json"


# What a corrupt zip raises from the standard library while it is opened or read.
UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, RuntimeError, NotImplementedError, OSError)


@dataclass
class Entry:
    name: str
    size: int
    compressed: int


@dataclass
class PackageArchive:
    """A package checked entry by entry; ``entries`` is in archive order (which the signature hashes)."""

    data: bytes
    entries: list[Entry]
    comment: bytes
    max_size: int = DEFAULT_MAX_SIZE
    name: str = "package"
    _cache: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def open(cls, source: str | Path | bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> PackageArchive:
        if isinstance(source, bytes):
            data, name = source, "package"
        else:
            path = Path(source)
            try:
                size = path.stat().st_size
            except OSError as exc:
                raise PackageError(f"{path}: cannot read package: {exc.strerror}") from exc
            if size > max_size:
                raise PackageLimitExceeded(f"{path}: package is {size} bytes, over the {max_size}-byte limit")
            data, name = path.read_bytes(), str(path)
        if len(data) > max_size:
            raise PackageLimitExceeded(f"{name}: package is {len(data)} bytes, over the {max_size}-byte limit")
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
        except UNREADABLE as exc:
            raise PackageError(f"{name}: not a valid .difypkg (zip) file: {exc}") from exc
        entries = cls._check_entries(zf, name, max_size)
        return cls(data=data, entries=entries, comment=zf.comment, max_size=max_size, name=name)

    @staticmethod
    def _check_entries(zf: zipfile.ZipFile, name: str, max_size: int) -> list[Entry]:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            raise PackageLimitExceeded(f"{name}: {len(infos)} entries, over the limit of {MAX_ENTRIES}")
        seen: set[str] = set()
        entries: list[Entry] = []
        total = 0
        for info in infos:
            entry_name = info.orig_filename  # as stored: zipfile cuts ``filename`` at a NUL
            if not info.flag_bits & 0x800:
                raw = info.orig_filename.encode("cp437", errors="replace")
                try:
                    entry_name = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise PackageError(f"{name}: entry {info.orig_filename!r} has a name that is not UTF-8") from None
            if "\x00" in entry_name:
                raise PackageError(f"{name}: entry {entry_name!r} has a NUL byte in its name")
            if entry_name.endswith("/"):
                continue  # directory entries carry nothing; the official packager never writes them
            if not is_safe_relative(entry_name) or any(p in ("", ".") for p in entry_name.split("/")):
                raise PackageError(f"{name}: entry {entry_name!r} escapes the package (absolute path or '..')")
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise PackageError(f"{name}: entry {entry_name!r} is a symbolic link, which packages may not contain")
            if entry_name in seen:
                raise PackageError(f"{name}: entry {entry_name!r} appears more than once")
            seen.add(entry_name)
            total += info.file_size
            if total > max_size:
                raise PackageLimitExceeded(
                    f"{name}: uncompressed size exceeds the {max_size}-byte limit (at entry {entry_name!r})"
                )
            if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise PackageLimitExceeded(
                    f"{name}: entry {entry_name!r} inflates {info.file_size // max(info.compress_size, 1)}:1, "
                    f"over the {MAX_RATIO}:1 ratio limit (zip bomb?)"
                )
            entries.append(Entry(entry_name, info.file_size, info.compress_size))
        if "manifest.yaml" not in seen:
            raise PackageError(f"{name}: manifest.yaml is missing from the package root")
        return entries

    def _zip(self) -> zipfile.ZipFile:
        return zipfile.ZipFile(io.BytesIO(self.data))

    def read(self, path: str) -> bytes | None:
        if path in self._cache:
            return self._cache[path]
        entry = next((e for e in self.entries if e.name == path), None)
        if entry is None:
            return None
        with self._zip() as zf:
            info = next(i for i in zf.infolist() if _entry_name(i) == path)
            try:
                with zf.open(info) as handle:
                    content = handle.read(entry.size + 1)
            except UNREADABLE as exc:
                raise PackageError(f"{self.name}: entry {path!r} cannot be read: {exc}") from exc
        if len(content) != entry.size:
            raise PackageError(
                f"{self.name}: entry {path!r} declares {entry.size} bytes but holds {len(content)}"
            )
        self._cache[path] = content
        return content

    def files(self) -> list[str]:
        return [e.name for e in self.entries]

    def read_all(self) -> list[tuple[str, bytes]]:
        """Every entry with its content, in archive order."""
        out = []
        with self._zip() as zf:
            for info in zf.infolist():
                name = _entry_name(info)
                if name.endswith("/"):
                    continue
                try:
                    with zf.open(info) as handle:
                        content = handle.read(info.file_size + 1)
                except UNREADABLE as exc:
                    raise PackageError(f"{self.name}: entry {name!r} cannot be read: {exc}") from exc
                if len(content) != info.file_size:
                    raise PackageError(
                        f"{self.name}: entry {name!r} declares {info.file_size} bytes but holds {len(content)}"
                    )
                out.append((name, content))
        return out

    def extract_to(self, target: str | Path) -> None:
        """Write every entry under ``target``; entries were checked, and the final path is checked again."""
        root = Path(target).resolve()
        root.mkdir(parents=True, exist_ok=True)
        for name, content in self.read_all():
            dest = (root / name).resolve()
            if root not in dest.parents:
                raise PackageError(f"{self.name}: entry {name!r} would be written outside {root}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(content)


class ArchiveSource:
    """The package as a ``FileSource`` for the declaration loader."""

    def __init__(self, archive: PackageArchive) -> None:
        self.archive = archive
        self.name = archive.name

    def read(self, path: str) -> bytes | None:
        return self.archive.read(path)

    def files(self) -> list[str]:
        return self.archive.files()


def _entry_name(info: zipfile.ZipInfo) -> str:
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.orig_filename.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename
