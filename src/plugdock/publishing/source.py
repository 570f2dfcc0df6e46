"""What is being published: a plugin folder (packed as ``plugdock package`` packs it) or a built ``.difypkg``.

Every check reads the packed files, never the folder, so ``.difyignore`` and the shipped SDK wheel count exactly
as they will on the Marketplace."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plugdock.errors import PlugdockError
from plugdock.packaging.archive import DEFAULT_MAX_SIZE, PackageArchive
from plugdock.packaging.build import build_package, is_bundle
from plugdock.schema.yaml_source import load_yaml


@dataclass
class Candidate:
    """One package about to be published, with its files unpacked in memory."""

    origin: Path
    data: bytes
    files: dict[str, bytes]
    manifest: dict[str, Any]
    # other .difypkg/.difybndl files packed inside this one (the one-package rule)
    extra_packages: list[str] = field(default_factory=list)
    uncompressed_size: int = 0

    @property
    def author(self) -> str:
        return str(self.manifest.get("author") or "")

    @property
    def name(self) -> str:
        return str(self.manifest.get("name") or "")

    @property
    def version(self) -> str:
        return str(self.manifest.get("version") or "")

    @property
    def asset_name(self) -> str:
        """``<name>-<version>.difypkg``: the file name Dify's GitHub install and the Marketplace repository use."""
        return f"{self.name}-{self.version}.difypkg"

    @property
    def marketplace_path(self) -> str:
        return f"{self.author}/{self.name}/{self.asset_name}"

    def text(self, name: str) -> str | None:
        data = self.files.get(name)
        return None if data is None else data.decode("utf-8", errors="replace")


def load_candidate(source: Path, *, max_size: int = DEFAULT_MAX_SIZE) -> Candidate:
    """Pack a folder (validated, as ``plugdock package`` does) or open a package; a bundle is refused, since the
    Marketplace takes one plugin per pull request."""
    if source.is_dir():
        if is_bundle(source):
            raise PlugdockError(f"{source}: is a bundle; the Marketplace and GitHub installs take one plugin package")
        # the limit is checked by its own check (package_size), so packing itself may go past it
        return _from_bytes(source, build_package(source, max_size=max_size * 4).data)
    if not source.is_file():
        raise PlugdockError(f"{source}: no such file or folder")
    if source.suffix == ".difybndl":
        raise PlugdockError(f"{source}: is a bundle; the Marketplace and GitHub installs take one plugin package")
    return _from_bytes(source, source.read_bytes())


def _from_bytes(origin: Path, data: bytes) -> Candidate:
    try:
        archive = PackageArchive.open(data, max_size=max(DEFAULT_MAX_SIZE * 4, len(data) * 4))
    except zipfile.BadZipFile:
        raise PlugdockError(f"{origin}: not a .difypkg (not a zip archive)") from None
    files = dict(archive.read_all())
    raw = files.get("manifest.yaml")
    if raw is None:
        raise PlugdockError(f"{origin}: the package has no manifest.yaml at its root")
    doc = load_yaml(raw, "manifest.yaml")
    if not isinstance(doc.data, dict):
        raise PlugdockError(f"{origin}: manifest.yaml is not a mapping")
    if doc.data.get("type") == "bundle":
        raise PlugdockError(f"{origin}: is a bundle; the Marketplace and GitHub installs take one plugin package")
    # a package packed inside the package (left out of .difyignore) is a second .difypkg in the pull request
    inner = sorted(n for n in files if n.endswith((".difypkg", ".difybndl")))
    return Candidate(origin=origin, data=data, files=files, manifest=doc.data, extra_packages=inner,
                     uncompressed_size=sum(len(v) for v in files.values()))
