"""Tool provider YAML and tool YAML."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from plugdock.schema.common import (
    DifyModel,
    Extra,
    I18nObject,
    ParameterOption,
    PluginTag,
    ProviderConfig,
    check_parameter,
    identity_name,
)

ToolParameterType = Literal[
    "string", "number", "boolean", "select", "secret-input", "file", "files", "app-selector", "model-selector",
    "any", "dynamic-select", "array", "object", "checkbox", "date", "date-range",
]
ToolParameterForm = Literal["schema", "form", "llm"]


class ParameterAutoGenerate(DifyModel):
    type: Literal["prompt_instruction"]


class ParameterTemplate(DifyModel):
    enabled: bool = False


class ToolParameter(DifyModel):
    """One input of a tool; ``form: llm`` parameters are filled by the model, the others by the user."""

    name: str = Field(min_length=1, max_length=1023)
    label: I18nObject
    human_description: I18nObject | None = None
    type: ToolParameterType
    scope: str | None = Field(default=None, max_length=1024)
    form: ToolParameterForm
    llm_description: str | None = None
    required: bool = False
    auto_generate: ParameterAutoGenerate | None = None
    template: ParameterTemplate | None = None
    default: Any = None
    min: float | None = None
    max: float | None = None
    multiple: bool = False
    precision: int | None = None
    options: list[ParameterOption] | None = None
    placeholder: I18nObject | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ToolParameter:
        check_parameter(self.type, self.scope, self.options, self.min, self.max)
        return self


class ToolIdentity(DifyModel):
    author: str = Field(min_length=1)
    name: str = Field(min_length=1)
    label: I18nObject
    icon: str | None = None

    _check_name = field_validator("name")(identity_name)


class ToolDescription(DifyModel):
    human: I18nObject
    llm: str = Field(min_length=1)


class ToolDeclaration(DifyModel):
    """A tool YAML file (``tools/<name>.yaml``)."""

    identity: ToolIdentity
    description: ToolDescription
    parameters: list[ToolParameter] | None = None
    output_schema: dict[str, Any] | None = None
    has_runtime_parameters: bool = False
    extra: Extra | None = None

    @model_validator(mode="after")
    def _unique_parameters(self) -> ToolDeclaration:
        first: dict[str, int] = {}
        for index, parameter in enumerate(self.parameters or []):
            if parameter.name not in first:
                first[parameter.name] = index
                continue
            self.note(("parameters", index, "name"),
                      f"parameter {parameter.name!r} repeats parameters[{first[parameter.name]}]; the official "
                      "daemon installs the tool with both declarations; rename or remove one")
        return self


class ToolProviderIdentity(DifyModel):
    author: str = Field(min_length=1)
    name: str = Field(min_length=1)
    description: I18nObject | None = None
    icon: str = Field(min_length=1)
    icon_dark: str | None = None
    label: I18nObject
    tags: list[PluginTag] | None = None

    _check_name = field_validator("name")(identity_name)


class OAuthSchema(DifyModel):
    client_schema: list[ProviderConfig] | None = None
    credentials_schema: list[ProviderConfig] | None = None


CredentialFields = list[ProviderConfig] | dict[str, ProviderConfig]


def credential_list(fields: CredentialFields | None) -> list[ProviderConfig]:
    """Credentials may be written as a list or as a mapping of name to field; give them as a list."""
    if fields is None:
        return []
    if isinstance(fields, dict):
        return [f.model_copy(update={"name": f.name or name}) for name, f in fields.items()]
    return list(fields)


class ToolProviderDeclaration(DifyModel):
    """A tool provider YAML file: identity, credentials, and the tool files (or inline tools)."""

    identity: ToolProviderIdentity
    credentials_for_provider: CredentialFields | None = None
    credentials_schema: CredentialFields | None = None
    oauth_schema: OAuthSchema | None = None
    tools: list[str | ToolDeclaration] = Field(default_factory=list)
    extra: Extra | None = None

    @property
    def credential_fields(self) -> list[ProviderConfig]:
        return credential_list(self.credentials_schema or self.credentials_for_provider)

    @property
    def tool_files(self) -> list[str]:
        return [t for t in self.tools if isinstance(t, str)]
