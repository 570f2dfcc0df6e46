"""Bundle ``manifest.yaml``: a named list of other plugins (from GitHub, the marketplace, or a package)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from plugdock.schema.common import VERSION_PATTERN, DifyModel, I18nObject, PluginTag, Version

_X = r"(\d{1,4}|[xX])"
_RANGE = rf"([~^]?{VERSION_PATTERN}|{_X}(\.{_X}){{2}}|{VERSION_PATTERN}-{VERSION_PATTERN})"
GITHUB_PATTERN_RE = re.compile(rf"^[a-z0-9_-]{{1,64}}/[a-z0-9_-]{{1,128}}:{_RANGE}/[^/]+$")
MARKETPLACE_PATTERN_RE = re.compile(rf"^[a-z0-9_-]{{1,64}}/[a-z0-9_-]{{1,128}}:{_RANGE}$")


class GithubDependencyValue(DifyModel):
    repo_pattern: str

    @field_validator("repo_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if not GITHUB_PATTERN_RE.match(value):
            raise ValueError(f"repo_pattern {value!r} must look like owner/repo:1.0.0/plugin.difypkg")
        return value


class MarketplaceDependencyValue(DifyModel):
    marketplace_pattern: str

    @field_validator("marketplace_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if not MARKETPLACE_PATTERN_RE.match(value):
            raise ValueError(f"marketplace_pattern {value!r} must look like org/plugin:1.0.0")
        return value


class PackageDependencyValue(DifyModel):
    path: str = Field(min_length=1)


class GithubDependency(DifyModel):
    type: Literal["github"]
    value: GithubDependencyValue


class MarketplaceDependency(DifyModel):
    type: Literal["marketplace"]
    value: MarketplaceDependencyValue


class PackageDependency(DifyModel):
    type: Literal["package"]
    value: PackageDependencyValue


Dependency = Annotated[GithubDependency | MarketplaceDependency | PackageDependency, Field(discriminator="type")]


class BundleManifest(DifyModel):
    name: str = Field(min_length=1)
    labels: I18nObject
    description: I18nObject
    icon: str = Field(min_length=1)
    version: Version
    author: str = Field(min_length=1)
    type: Literal["bundle"]
    dependencies: list[Dependency]
    tags: list[PluginTag] | None = None
