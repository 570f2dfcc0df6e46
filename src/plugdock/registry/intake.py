"""Taking a package in, and answering with the Marketplace's shapes.

An upload is read as the daemon reads one (every entry checked, the declaration loaded and valid); signed with
the registry's key when it has one — the signature covers ``.verification.dify.json``, which is part of the
checksum, so the identifier is computed after signing — and stored under its checksum. The answers follow what
Dify parses (``api/core/plugin/entities/marketplace.py``: ``MarketplacePluginDeclaration``, and
``MarketplacePluginSnapshot`` for ``/api/v1/dist/plugins/manifest.json``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from plugdock.errors import PackageError, PlugdockError
from plugdock.packaging.archive import DEFAULT_MAX_SIZE, ArchiveSource, PackageArchive
from plugdock.packaging.checksum import package_checksum
from plugdock.packaging.identifier import PluginIdentifier
from plugdock.packaging.signature import sign_package
from plugdock.registry.blobs import Blobs
from plugdock.registry.store import Catalog, PackageVersion
from plugdock.schema.declaration import plugin_declaration
from plugdock.schema.plugin import load_plugin

# The console's category names (web/app/components/plugins/types.ts), keyed by the declaration part that makes it.
CATEGORIES = (("model", "model"), ("tool", "tool"), ("agent_strategy", "agent-strategy"),
              ("datasource", "datasource"), ("trigger", "trigger"), ("endpoint", "extension"))


class VersionConflict(PlugdockError):
    code = "version_conflict"


@dataclass
class Published:
    row: PackageVersion
    created: bool


def publish(data: bytes, catalog: Catalog, blobs: Blobs, key: rsa.RSAPrivateKey | None = None,
            max_size: int = DEFAULT_MAX_SIZE) -> Published:
    """Store ``data`` as a new version; the same identifier again is accepted as already there."""
    if key is not None:
        PackageArchive.open(data, max_size=max_size)  # refuse a bad zip before signing it
        data = sign_package(data, key, category="community")
    archive = PackageArchive.open(data, max_size=max_size)
    plugin = load_plugin(ArchiveSource(archive))
    if not plugin.ok or plugin.manifest is None:
        details = "; ".join(str(p) for p in plugin.errors[:10])
        raise PackageError(f"the package is not a valid plugin: {details}")
    manifest = plugin.manifest
    if not manifest.author:
        raise PackageError("manifest.yaml: author is empty; the Marketplace names every plugin org/name")
    files = archive.read_all()
    identifier = PluginIdentifier(manifest.author, manifest.name, manifest.version, package_checksum(files))
    same_version = catalog.by_version(identifier.plugin_id, manifest.version)
    if same_version is not None and same_version.unique_identifier != str(identifier):
        raise VersionConflict(f"{identifier.plugin_id} {manifest.version} is published already as "
                              f"{same_version.unique_identifier}, with other contents; a published version never "
                              "changes (installations name it by checksum): bump the version")
    declaration = plugin_declaration(plugin)
    contents = dict(files)
    icon = f"_assets/{manifest.icon}" if f"_assets/{manifest.icon}" in contents else ""
    readme = contents.get("README.md", b"").decode("utf-8", "replace")
    category = next((name for part, name in CATEGORIES if declaration.get(part)), "tool")
    row = PackageVersion(unique_identifier=str(identifier), plugin_id=identifier.plugin_id, org=manifest.author,
                         name=manifest.name, version=manifest.version, checksum=identifier.checksum,
                         category=category, declaration=declaration, readme=readme, icon=icon, size=len(data),
                         signed=bool(archive.comment), yanked=False, yank_reason="", install_count=0,
                         created_at=dt.datetime.now(dt.UTC))
    if same_version is None:
        blobs.put(blob_key(identifier.checksum), data)
    added = catalog.add(row)
    if added is None:
        raise VersionConflict(f"{identifier.plugin_id} {manifest.version} was just published by another upload, "
                              "with other contents: bump the version")
    return Published(*added)


def blob_key(checksum: str) -> str:
    return f"{checksum}.difypkg"


def _stamp(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def marketplace_plugin(latest: PackageVersion, catalog: Catalog, base_url: str) -> dict[str, Any]:
    """A plugin as ``/api/v1/plugins/batch`` and the search routes give it (MarketplacePluginDeclaration)."""
    declaration = latest.declaration
    base = base_url.rstrip("/")
    versions = catalog.versions(latest.plugin_id)
    out: dict[str, Any] = {
        "type": "plugin", "org": latest.org, "name": latest.name, "plugin_id": latest.plugin_id,
        "icon": f"{base}/api/v1/plugins/{latest.org}/{latest.name}/icon",
        "label": declaration.get("label") or {"en_US": latest.name},
        "brief": declaration.get("description") or {"en_US": ""},
        "introduction": latest.readme, "category": latest.category,
        "resource": declaration.get("resource") or {"memory": 0},
        "tags": [{"name": tag} for tag in declaration.get("tags") or []],
        "version": latest.version, "latest_version": latest.version,
        "latest_package_identifier": latest.unique_identifier, "status": "active", "deprecated_reason": "",
        "alternative_plugin_id": "", "verified": latest.signed, "install_count": catalog.installs(latest.plugin_id),
        "badges": [], "privacy_policy": declaration.get("privacy") or "", "repository": declaration.get("repo") or "",
        "created_at": _stamp(min(v.created_at for v in versions)), "updated_at": _stamp(latest.created_at),
        "version_updated_at": _stamp(latest.created_at),
    }
    for part in ("endpoint", "model", "tool", "agent_strategy", "datasource", "trigger"):
        if declaration.get(part):
            out[part] = declaration[part]
    return out


def snapshot(latest: PackageVersion, base_url: str) -> dict[str, Any]:
    """One plugin of ``/api/v1/dist/plugins/manifest.json`` (MarketplacePluginSnapshot)."""
    return {"org": latest.org, "name": latest.name, "latest_version": latest.version,
            "latest_package_identifier": latest.unique_identifier,
            "latest_package_url": f"{base_url.rstrip('/')}/api/v1/plugins/{latest.org}/{latest.name}/"
                                  f"{latest.version}/download"}


def version_entry(row: PackageVersion) -> dict[str, Any]:
    return {"version": row.version, "unique_identifier": row.unique_identifier, "checksum": row.checksum,
            "yanked": row.yanked, "yank_reason": row.yank_reason, "signed": row.signed, "size": row.size,
            "install_count": row.install_count, "created_at": _stamp(row.created_at)}
