"""Packages from the official storage folder, checked in memory and then installed through the daemon's installer.

The official daemon accepted these packages already, so they are taken as the operator's own (the signature
policy is not applied again; a signature that verifies is still recorded). Everything else plugdock checks on
upload applies, and the package must decode to the very identifier the official database names: its
checksum is part of the identifier, so a changed file is refused rather than installed under another name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import delete

from plugdock.daemon.migration.official import Layout
from plugdock.daemon.state.models import PluginRecord
from plugdock.errors import PackageError, PlugdockError
from plugdock.packaging.archive import ArchiveSource, PackageArchive
from plugdock.packaging.checksum import package_checksum
from plugdock.packaging.identifier import PluginIdentifier
from plugdock.schema.plugin import load_plugin

if TYPE_CHECKING:
    from plugdock.daemon.core import Daemon


def read_package(layout: Layout, identifier: str) -> bytes:
    path = layout.package_file(identifier)
    if path is None:
        places = " or ".join(str(layout.root / folder / identifier) for folder in (layout.installed, layout.packages))
        raise PackageError(f"its package is not in the storage folder (looked for {places})")
    return path.read_bytes()


def check_package(data: bytes, identifier: str, max_size: int) -> None:
    """Refuse what the installer's upload would refuse, and a package that is not the identifier's; no side effects."""
    archive = PackageArchive.open(data, max_size=max_size)
    plugin = load_plugin(ArchiveSource(archive))
    if not plugin.ok or plugin.manifest is None:
        details = "; ".join(str(p) for p in plugin.errors[:10])
        raise PackageError(f"the package is not a valid plugin: {details}")
    manifest = plugin.manifest
    if manifest.author and len(manifest.author) == 36 and manifest.author.count("-") == 4:
        raise PackageError("the package's author looks like a UUID, which marks remote-debugging plugins")
    found = PluginIdentifier(manifest.author, manifest.name, manifest.version, package_checksum(archive.read_all()))
    if str(found) != identifier:
        raise PackageError(f"the package file decodes to {found}, not to the identifier the official database names")


async def import_package(daemon: Daemon, layout: Layout, identifier: str, known: bool,
                         progress: Callable[[str], None] | None = None) -> None:
    """Upload and prepare one package (files and environment); on failure, remove what this call stored.

    ``known``: plugdock had a record of it before, which is then left as it was."""
    data = read_package(layout, identifier)
    check_package(data, identifier, daemon.settings.max_package_size)
    installer = daemon.installer
    checksum = PluginIdentifier.parse(identifier).checksum
    had_blob = installer.packages.get(f"{checksum}.difypkg") is not None
    try:
        await asyncio.to_thread(installer.decode, data, False, True)
        await installer.prepare(identifier, progress)
    except BaseException:
        if not known:  # prepare removed its folder; the record and the stored package go too
            with daemon.db.session() as s:
                s.execute(delete(PluginRecord).where(PluginRecord.unique_identifier == identifier,
                                                     PluginRecord.installed == 0))
            if not had_blob:
                installer.packages.delete(f"{checksum}.difypkg")
        raise


def failure_reason(exc: BaseException) -> str:
    if isinstance(exc, PlugdockError):
        return exc.message
    if isinstance(exc, OSError):
        return f"{exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}"
    return f"internal error: {type(exc).__name__}: {exc}"
