"""Request bodies of the management and dispatch routes, as the Dify host sends them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from plugdock.errors import PackageError
from plugdock.packaging.identifier import InvalidIdentifier, PluginIdentifier


class IdentifiersBody(BaseModel):
    plugin_unique_identifiers: list[str] = Field(max_length=64)
    source: str = ""
    metas: list[dict[str, Any]] = Field(default_factory=list)


class UpgradeBody(BaseModel):
    original_plugin_unique_identifier: str
    new_plugin_unique_identifier: str
    source: str = ""
    meta: dict[str, Any] = Field(default_factory=dict)


class UninstallBody(BaseModel):
    plugin_installation_id: str


class PluginIdsBody(BaseModel):
    plugin_ids: list[str] = Field(default_factory=list, max_length=256)


class IdentifierListBody(BaseModel):
    plugin_unique_identifiers: list[str] = Field(default_factory=list, max_length=256)


class CredentialsBody(BaseModel):
    plugin_id: str
    provider: str
    credentials: dict[str, Any] = Field(default_factory=dict)


class DispatchBody(BaseModel):
    user_id: str = ""
    conversation_id: str | None = None
    message_id: str | None = None
    app_id: str | None = None
    endpoint_id: str | None = None
    context: dict[str, Any] | None = None
    data: dict[str, Any] = Field(default_factory=dict)


def parse_identifier(text: str) -> PluginIdentifier:
    try:
        return PluginIdentifier.parse(text)
    except InvalidIdentifier as exc:
        raise PackageError(exc.message) from exc
