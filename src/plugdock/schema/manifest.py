"""``manifest.yaml``: who the plugin is, what it needs, and which provider files it declares."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from plugdock.schema.common import (
    AUTHOR_RE,
    PLUGIN_NAME_RE,
    DifyModel,
    I18nObject,
    PluginTag,
    Version,
)

RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
STORAGE_MIN, STORAGE_MAX = 1024, 1073741824


class ToolPermission(DifyModel):
    enabled: bool = False


class ModelPermission(DifyModel):
    enabled: bool = False
    llm: bool = False
    text_embedding: bool = False
    rerank: bool = False
    tts: bool = False
    speech2text: bool = False
    moderation: bool = False


class EnabledPermission(DifyModel):
    enabled: bool = False


class StoragePermission(DifyModel):
    enabled: bool = False
    size: int = Field(default=0, description=f"quota in bytes, {STORAGE_MIN}..{STORAGE_MAX}")

    @model_validator(mode="after")
    def _size_in_range(self) -> StoragePermission:
        if (self.enabled or "size" in self.model_fields_set) and not STORAGE_MIN <= self.size <= STORAGE_MAX:
            raise ValueError(f"storage.size must be between {STORAGE_MIN} and {STORAGE_MAX} bytes, got {self.size}")
        return self


class Permission(DifyModel):
    """What the plugin may ask of the host; the daemon refuses any reverse call not listed here."""

    tool: ToolPermission | None = None
    model: ModelPermission | None = None
    node: EnabledPermission | None = None
    endpoint: EnabledPermission | None = None
    app: EnabledPermission | None = None
    storage: StoragePermission | None = None

    def allows(self, capability: str) -> bool:
        """``capability`` is ``tool``, ``node``, ``app``, ``endpoint``, ``storage`` or ``model.<type>``."""
        kind, _, sub = capability.partition(".")
        section = getattr(self, kind, None)
        if section is None or not section.enabled:
            return False
        return bool(getattr(section, sub)) if sub else True


class Resource(DifyModel):
    memory: int = Field(gt=0, description="memory the plugin needs, in bytes")
    permission: Permission | None = None


class Runner(DifyModel):
    language: Literal["python"]
    version: str = Field(min_length=1, max_length=128)
    entrypoint: str = Field(min_length=1, max_length=256)


class Meta(DifyModel):
    version: Version
    arch: list[Literal["amd64", "arm64"]] = Field(min_length=1)
    runner: Runner
    minimum_dify_version: str | None = None


class PluginRefs(DifyModel):
    """Paths (inside the plugin) of the provider YAML files, one list per kind."""

    tools: list[str] | None = None
    models: list[str] | None = None
    endpoints: list[str] | None = None
    agent_strategies: list[str] | None = None
    datasources: list[str] | None = None
    triggers: list[str] | None = None

    @field_validator("*")
    @classmethod
    def _short_paths(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            if len(item) > 128:
                raise ValueError(f"path {item[:40]!r}... is longer than 128 characters")
        return value


class PluginManifest(DifyModel):
    """The root ``manifest.yaml`` of a plugin package."""

    version: Version
    type: Literal["plugin"]
    author: str = Field(description="^[a-z0-9_-]{1,64}$")
    name: str = Field(description="^[a-z0-9_-]{1,128}$")
    label: I18nObject
    description: I18nObject
    icon: str = Field(min_length=1, max_length=128)
    icon_dark: str | None = Field(default=None, max_length=128)
    resource: Resource
    plugins: PluginRefs
    meta: Meta
    tags: list[PluginTag] | None = None
    created_at: str
    privacy: str | None = None
    repo: str | None = None

    @field_validator("author")
    @classmethod
    def _author(cls, value: str) -> str:
        if not AUTHOR_RE.match(value):
            raise ValueError(f"author {value!r} must match ^[a-z0-9_-]{{1,64}}$ (lowercase letters, digits, _ and -)")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not PLUGIN_NAME_RE.match(value):
            raise ValueError(f"name {value!r} must match ^[a-z0-9_-]{{1,128}}$ (lowercase letters, digits, _ and -)")
        return value

    @field_validator("created_at", mode="before")
    @classmethod
    def _created_at(cls, value: Any) -> Any:
        if isinstance(value, str) and not RFC3339_RE.match(value):
            raise ValueError(f"created_at {value!r} is not an RFC 3339 time such as 2024-07-12T08:03:44Z")
        return value

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str | None) -> str | None:
        if value and not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://\S+$", value):
            raise ValueError(f"repo {value!r} is not a URL")
        return value

    @property
    def plugin_id(self) -> str:
        return f"{self.author}/{self.name}"

    @property
    def permission(self) -> Permission:
        return self.resource.permission or Permission()

    @property
    def category(self) -> str:
        """The marketplace category, decided as the official daemon decides it."""
        refs = self.plugins
        for kind, attr in (
            ("tool", "tools"), ("model", "models"), ("datasource", "datasources"),
            ("agent-strategy", "agent_strategies"), ("trigger", "triggers"),
        ):
            if getattr(refs, attr):
                return kind
        return "extension"
