"""Bundles: a list of plugins installed together with one progress view.

Members come from inside the bundle (``package``), from a marketplace-style registry (``marketplace``,
``org/plugin:1.0.0``) or from a GitHub release (``github``, ``owner/repo:1.0.0/file.difypkg``); each is
downloaded, checked like any upload (signature policy included), and all are installed by one task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from plugdock.daemon.plugins.installer import Installer
from plugdock.daemon.settings import Settings
from plugdock.errors import PackageError
from plugdock.packaging.archive import ArchiveSource, PackageArchive
from plugdock.schema.bundle import GithubDependency, MarketplaceDependency, PackageDependency
from plugdock.schema.bundle_loader import load_bundle

EXACT = re.compile(r"^\d{1,4}(\.\d{1,4}){2}(-\w{1,16})?$")


@dataclass
class Member:
    kind: str
    reference: str
    data: bytes


def read_bundle(data: bytes, settings: Settings) -> tuple[Any, PackageArchive]:
    archive = PackageArchive.open(data, max_size=settings.max_package_size * 12)
    bundle, problems = load_bundle(ArchiveSource(archive))
    errors = [str(p) for p in problems if p.is_error]
    if bundle is None or errors:
        raise PackageError(f"the bundle is not valid: {'; '.join(errors[:5])}")
    return bundle, archive


def _pattern_parts(pattern: str) -> list[str]:
    """The official Split(): cut at ':', then each piece at '/'."""
    return [part for piece in pattern.split(":") for part in piece.split("/")]


def reference_value(dep: GithubDependency | MarketplaceDependency) -> dict[str, str]:
    """A GitHub or marketplace member as the official UploadPluginBundle reports it (internal/service/
    plugin_decoder.go, pkg/entities/bundle_entities/dependency.go) and Dify's PluginBundleDependency.Github /
    .Marketplace read it (api/core/plugin/entities/bundle.py)."""
    if isinstance(dep, MarketplaceDependency):
        parts = [*_pattern_parts(dep.value.marketplace_pattern), "", "", ""]
        return {"organization": parts[0], "plugin": parts[1], "version": parts[2]}
    parts = [*_pattern_parts(dep.value.repo_pattern), "", "", "", ""]
    return {"repo_address": f"https://github.com/{parts[0]}/{parts[1]}", "repo": f"{parts[0]}/{parts[1]}",
            "release": parts[2], "packages": parts[3]}


def _exact(version: str, reference: str) -> str:
    if not EXACT.match(version):
        raise PackageError(f"{reference}: only exact versions can be installed without a registry index "
                           f"(got {version!r})")
    return version


async def fetch_members(bundle: Any, archive: PackageArchive, settings: Settings) -> list[Member]:
    """Every member's package bytes, downloaded where needed; the first failure names the member."""
    import httpx

    members: list[Member] = []
    async with httpx.AsyncClient(timeout=120, follow_redirects=True) as client:
        for dep in bundle.dependencies:
            if isinstance(dep, PackageDependency):
                path = dep.value.path
                data = archive.read(path) or archive.read(f"_assets/{path}")
                if data is None:
                    raise PackageError(f"package {path!r} is not inside the bundle")
                members.append(Member("package", path, data))
                continue
            if isinstance(dep, MarketplaceDependency):
                pattern = dep.value.marketplace_pattern
                org_name, version = pattern.split(":", 1)
                org, name = org_name.split("/", 1)
                url = (f"{settings.marketplace_url.rstrip('/')}/api/v1/plugins/{org}/{name}/"
                       f"{_exact(version, pattern)}/download")
                reference = pattern
            else:
                assert isinstance(dep, GithubDependency)
                pattern = dep.value.repo_pattern
                repo, rest = pattern.split(":", 1)
                version, asset = rest.split("/", 1)
                url = f"{settings.github_url.rstrip('/')}/{repo}/releases/download/{_exact(version, pattern)}/{asset}"
                reference = pattern
            try:
                response = await client.get(url)
            except httpx.HTTPError as exc:
                raise PackageError(f"{reference}: cannot download {url}: {exc}") from exc
            if response.status_code != 200:
                raise PackageError(f"{reference}: {url} answered {response.status_code}")
            members.append(Member(dep.type, reference, response.content))
    return members


async def install_bundle(installer: Installer, settings: Settings, tenant: str, data: bytes,
                         verify_signature: bool) -> dict[str, Any]:
    import asyncio

    bundle, archive = read_bundle(data, settings)
    identifiers = []
    for member in await fetch_members(bundle, archive, settings):
        try:
            decoded = await asyncio.to_thread(installer.decode, member.data, verify_signature, False, True)
        except PackageError as exc:
            raise PackageError(f"{member.reference}: {exc.message}") from exc
        identifiers.append(str(decoded.identifier))
    # "package": one of Dify's PluginInstallationSource values (api/core/plugin/entities/plugin.py), which its
    # plugin list validates; the bundle is named in each installation's meta
    task_id = installer.create_task(tenant, identifiers, "package", [{"bundle": bundle.name} for _ in identifiers])
    return {"task_id": task_id, "plugin_unique_identifiers": identifiers}
