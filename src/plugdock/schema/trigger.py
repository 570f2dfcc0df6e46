"""Trigger provider YAML and event YAML (webhook events that start workflows).

Field names, types and required-ness follow the official SDK's ``entities/trigger.py`` and the official
daemon's ``pkg/entities/plugin_entities/trigger_declaration.go``; where the two differ, the stricter rule
wins, because a plugin must load in both (the daemon requires the provider icon, the SDK requires every
``extra.python.source`` and accepts events only as file paths).
"""

from __future__ import annotations

import ast
from typing import Any

from pydantic import Field, field_validator, model_validator

from plugdock.schema.common import (
    DifyModel,
    I18nObject,
    ProviderConfig,
    SourceExtra,
    check_bounds,
    check_scope,
    identity_name,
)
from plugdock.schema.tool import (
    CredentialFields,
    OAuthSchema,
    ParameterAutoGenerate,
    ParameterTemplate,
    credential_list,
)

# The official EventParameterType (SDK) / isEventParameterType (daemon): the same twelve names.
EVENT_PARAMETER_TYPES = (
    "string", "number", "boolean", "select", "checkbox", "file", "files", "model-selector", "app-selector",
    "object", "array", "dynamic-select",
)


class EventParameterOption(DifyModel):
    value: Any = Field(description="required by the daemon; a string for select and checkbox options")
    label: I18nObject
    icon: str | None = None

    @field_validator("value")
    @classmethod
    def _present(cls, value: Any) -> Any:
        if value is None or value == "":
            raise ValueError("an option needs a value")
        return value


class EventParameter(DifyModel):
    """One input of an event or of the subscription constructor."""

    name: str = Field(min_length=1)
    label: I18nObject
    type: str = Field(description=f"one of {', '.join(EVENT_PARAMETER_TYPES)}")
    auto_generate: ParameterAutoGenerate | None = None
    template: ParameterTemplate | None = None
    scope: str | None = None
    required: bool = False
    multiple: bool = False
    default: int | float | str | list[Any] | None = None
    min: float | None = None
    max: float | None = None
    precision: int | None = None
    options: list[EventParameterOption] | None = None
    description: I18nObject | None = None

    @model_validator(mode="after")
    def _consistent(self) -> EventParameter:
        if self.type not in EVENT_PARAMETER_TYPES:
            # the official daemon installs it (its struct checks run for remote debugging only), and both SDKs
            # refuse the provider when the plugin starts: what an author needs to hear, not a refused upload
            self.note(("type",), f"{self.type!r} is not an event parameter type: the official daemon installs "
                      "the package, but dify-plugin (0.9 and 0.10) refuses this provider when the plugin starts; "
                      f"use one of {', '.join(EVENT_PARAMETER_TYPES)}")
        check_scope(self.type, self.scope)
        if self.type == "select" and not self.options:
            self.note(("options",), "a select parameter without options offers nothing to choose (neither the "
                      "official SDK nor the daemon refuses it)")
        check_bounds(self.min, self.max)
        return self


def _unique_names(owner: DifyModel, parameters: list[EventParameter], where: str) -> None:
    first: dict[str, int] = {}
    for index, parameter in enumerate(parameters):
        if parameter.name in first:
            owner.note((where, index, "name"), f"parameter {parameter.name!r} repeats {where}[{first[parameter.name]}]"
                       "; the host shows both fields and keeps one value: rename or remove one")
        first.setdefault(parameter.name, index)


class EventIdentity(DifyModel):
    author: str = Field(min_length=1)
    name: str = Field(min_length=1)
    label: I18nObject

    _check_name = field_validator("name")(identity_name)


class EventDeclaration(DifyModel):
    """An event YAML file (``events/<name>.yaml``): what the workflow receives when it fires."""

    identity: EventIdentity
    description: I18nObject
    parameters: list[EventParameter] = Field(default_factory=list)
    output_schema: dict[str, Any] | None = None
    extra: SourceExtra

    @field_validator("parameters", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value  # the SDK reads ``parameters:`` with no list as none

    @model_validator(mode="after")
    def _unique(self) -> EventDeclaration:
        _unique_names(self, self.parameters, "parameters")
        return self


class TriggerProviderIdentity(DifyModel):
    author: str = Field(min_length=1)
    name: str = Field(min_length=1)
    label: I18nObject
    description: I18nObject
    icon: str = Field(min_length=1, description="required by the official daemon (the SDK lets it be empty)")
    icon_dark: str | None = None
    tags: list[str] = Field(default_factory=list, max_length=0,
                            description="leave empty: the official SDK takes only 'webhooks', the daemon only "
                                        "plugin tags, so any tag stops the plugin in one of them")

    _check_name = field_validator("name")(identity_name)

    @field_validator("tags", mode="before")
    @classmethod
    def _no_tags(cls, value: Any) -> Any:
        if value:
            raise ValueError("leave tags out: the official SDK accepts only 'webhooks' here and the daemon only "
                             "plugin tags (utilities, trigger, ...), so any tag stops the plugin in one of them; "
                             "tag the plugin in manifest.yaml instead")
        return value


class SubscriptionConstructor(DifyModel):
    """How Dify creates a subscription for the user (a webhook registered through the service's API)."""

    parameters: list[EventParameter] = Field(default_factory=list)
    credentials_schema: CredentialFields = Field(default_factory=list)
    oauth_schema: OAuthSchema | None = None
    extra: SourceExtra | None = None

    @property
    def credential_fields(self) -> list[ProviderConfig]:
        return credential_list(self.credentials_schema)

    @model_validator(mode="after")
    def _unique(self) -> SubscriptionConstructor:
        _unique_names(self, self.parameters, "parameters")
        return self


class TriggerProviderDeclaration(DifyModel):
    """A trigger provider YAML file: identity, subscription schema and constructor, and the event files."""

    identity: TriggerProviderIdentity
    subscription_schema: CredentialFields = Field(default_factory=list)
    subscription_constructor: SubscriptionConstructor | None = None
    events: list[str | EventDeclaration] = Field(default_factory=list)
    extra: SourceExtra

    @property
    def subscription_fields(self) -> list[ProviderConfig]:
        return credential_list(self.subscription_schema)

    @property
    def event_files(self) -> list[str]:
        return [e for e in self.events if isinstance(e, str)]

    @model_validator(mode="after")
    def _inline_events(self) -> TriggerProviderDeclaration:
        for index, event in enumerate(self.events):
            if isinstance(event, EventDeclaration):
                self.note(("events", index), "an inline event loads in the official daemon but the official SDK "
                          "refuses it ('event path should be a string'): put it in its own file")
        return self


def class_bases(data: bytes | None) -> set[str] | None:
    """Names of the direct base classes a Python file's classes name (None when it does not parse: the source
    check reports that)."""
    try:
        tree = ast.parse(data or b"")
    except (SyntaxError, ValueError):
        return None
    return {b.id if isinstance(b, ast.Name) else b.attr for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
            for b in node.bases if isinstance(b, ast.Name | ast.Attribute)}
