"""Endpoint group YAML (settings plus endpoint files) and endpoint YAML (path, method, source)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from plugdock.schema.common import DifyModel, Extra, ProviderConfig

EndpointMethod = Literal["HEAD", "GET", "POST", "PUT", "DELETE", "OPTIONS"]


class EndpointDeclaration(DifyModel):
    path: str = Field(min_length=1)
    method: EndpointMethod
    hidden: bool = False
    extra: Extra | None = None

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"path {value!r} must start with '/'")
        return value


class EndpointProviderDeclaration(DifyModel):
    settings: list[ProviderConfig] | None = None
    endpoints: list[str | EndpointDeclaration] = Field(default_factory=list)

    @property
    def endpoint_files(self) -> list[str]:
        return [e for e in self.endpoints if isinstance(e, str)]
