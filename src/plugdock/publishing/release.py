"""GitHub releases: publish ``<name>-<version>.difypkg`` on the release tagged ``v<version>``, and fetch one back.

This is the layout Dify's "Install from GitHub" reads (a release per version, the package as its asset), so a
release made here installs in Dify as well as with ``plugdock install github:OWNER/NAME@VERSION``."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from plugdock.errors import PlugdockError
from plugdock.publishing.github import GitHub, ProgressFn
from plugdock.publishing.source import Candidate

SPEC_RE = re.compile(r"^github:([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)@(\S+)$")


@dataclass
class Published:
    release_url: str
    asset_url: str
    created_release: bool
    replaced: bool


def publish_release(gh: GitHub, repo: str, c: Candidate, *, replace: bool = False,
                    progress: ProgressFn | None = None) -> Published:
    """Create or reuse the release ``v<version>``; an asset of the same name is refused unless ``replace``."""
    tag = f"v{c.version}"
    release = gh.release_by_tag(repo, tag)
    created = release is None
    if release is None:
        body = f"{c.author}/{c.name} {c.version}\n\nInstall in Dify with Plugins > Install plugin > GitHub, or " \
               f"`plugdock install github:{repo}@{c.version}`."
        release = gh.create_release(repo, tag, f"{c.name} {c.version}", body)
    replaced = False
    for asset in gh.assets(repo, int(release["id"])):
        if asset.get("name") == c.asset_name:
            if not replace:
                raise PlugdockError(f"release {tag} of {repo} already has {c.asset_name} ({asset.get('size')} bytes): "
                                    "bump the version in manifest.yaml, or give --replace to upload it again")
            gh.delete_asset(repo, int(asset["id"]))
            replaced = True
    uploaded = gh.upload_asset(str(release["upload_url"]), c.asset_name, c.data, progress)
    return Published(release_url=str(release["html_url"]), asset_url=str(uploaded.get("browser_download_url", "")),
                     created_release=created, replaced=replaced)


def released(gh: GitHub, repo: str) -> Callable[[str, str], bool]:
    """What ``check_version_exists`` asks: does release TAG carry ASSET already?"""

    def ask(tag: str, asset_name: str) -> bool:
        release = gh.release_by_tag(repo, tag)
        return release is not None and any(a.get("name") == asset_name for a in gh.assets(repo, int(release["id"])))

    return ask



def parse_spec(spec: str) -> tuple[str, str]:
    """``github:OWNER/NAME@VERSION`` as (repo, version); a leading v in the version is accepted."""
    match = SPEC_RE.match(spec)
    if not match:
        raise PlugdockError(f"{spec!r} is not github:OWNER/NAME@VERSION (e.g. github:alice/weather@0.1.0)")
    return match.group(1), match.group(2).removeprefix("v")


def fetch_release_package(gh: GitHub, spec: str) -> tuple[str, bytes]:
    """Find the release of VERSION (tag ``vVERSION``, else ``VERSION``) and download its one package asset:
    ``*-VERSION.difypkg`` when there are several."""
    repo, version = parse_spec(spec)
    release = gh.release_by_tag(repo, f"v{version}") or gh.release_by_tag(repo, version)
    if release is None:
        raise PlugdockError(f"{repo} has no release tagged v{version} (nor {version})")
    packages = [a for a in gh.assets(repo, int(release["id"]))
                if str(a.get("name", "")).endswith((".difypkg", ".difybndl"))]
    if len(packages) > 1:
        packages = [a for a in packages if str(a["name"]).endswith(f"-{version}.difypkg")] or packages
    if not packages:
        raise PlugdockError(f"release {release.get('tag_name')} of {repo} has no .difypkg asset")
    if len(packages) > 1:
        raise PlugdockError(f"release {release.get('tag_name')} of {repo} has several packages "
                            f"({', '.join(a['name'] for a in packages)}); download the one you want and install it")
    asset = packages[0]
    return str(asset["name"]), gh.download_asset(asset)
